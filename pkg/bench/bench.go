// Package bench measures codecs side by side on one token dataset: file
// ratio against float16, bits per value, encode and decode throughput,
// decode latency per chunk and per sample, reconstruction quality
// (pkg/metrics) and a retrieval proxy for task quality (nearest-neighbour
// agreement of mean-pooled embeddings).
//
// Every codec is measured in the same process on the same samples, held in
// memory as float32, so the figures are comparable. Each (codec, rate) is
// encoded with ntcb.Encode into an in-memory .ntcb file, so its ratio is the
// real file's; decoding reads that file back through ntcb.Reader. The
// definitions are in docs/metrics.md.
package bench

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// Sentinel errors.
var (
	// ErrNoCUDA means a CUDA device was asked for but this build has no GPU
	// decoder.
	ErrNoCUDA = errors.New("ntc was built without CUDA support")
	// ErrDevice means the device name is not one of DeviceCPU, DeviceCUDA.
	ErrDevice = errors.New("unknown device")
	// ErrOptions means the options are inconsistent (no codecs, a ratio
	// below 1, ...).
	ErrOptions = errors.New("invalid bench options")
	// ErrPlotFormat means a chart was asked for in a format other than SVG
	// or PNG.
	ErrPlotFormat = errors.New("the chart must be .svg or .png")
)

// Devices that decoding can run on.
const (
	DeviceCPU  = "cpu"
	DeviceCUDA = "cuda"
)

// RawCodec is the name of the reference row: the tokens as raw float16,
// ratio 1, decoded by a float16 to float32 conversion.
const RawCodec = "raw"

// Defaults for Options.
const (
	// DefaultRepeat is the number of timed decode passes over every chunk.
	DefaultRepeat = 3
	// DefaultSampleReads is the number of cold single-sample reads timed.
	DefaultSampleReads = 32
	// MinTimedChunks is the least number of timed chunk decodes: inputs
	// with few chunks get more than Repeat passes.
	MinTimedChunks = 16
	// DefaultMaxNNSamples bounds the samples of the nearest-neighbour
	// proxy, whose cost grows with the square of their number.
	DefaultMaxNNSamples = 2048
)

// DefaultOrder is the order of the default codec list; registered codecs
// not named here follow in sorted order.
var DefaultOrder = []string{"fp16", "int8", "fp8", "int4", "ntc"}

// DefaultRatios are the target ratios of rate-controlled codecs.
var DefaultRatios = []float64{4, 8, 16}

// DefaultCodecs returns every registered codec, those of DefaultOrder
// first and in that order.
func DefaultCodecs() []string {
	names := codec.Names()
	var out []string
	for _, n := range DefaultOrder {
		if slices.Contains(names, n) {
			out = append(out, n)
		}
	}
	for _, n := range names {
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// Stage is the progress of one measured row; the command line draws it.
type Stage interface {
	// Add reports n more samples processed.
	Add(n int)
	// Done ends the stage.
	Done()
}

// Options configure Run. The zero value measures every registered codec at
// DefaultRatios on the CPU, for samples without prefix tokens: as in
// ntcb.Options, Prefix -1 infers the layout.
type Options struct {
	// Codecs names the codecs to measure, in order; empty means
	// DefaultCodecs(). The raw float16 reference row always comes first.
	Codecs []string
	// Ratios are the target ratios for codecs with rate control (those
	// whose codec.Spec.New accepts codec.Options.Ratio); each gets one row
	// per ratio. Empty means DefaultRatios. Fixed-rate codecs get one row.
	Ratios []float64
	// Qualities are quality targets for codecs with rate control
	// (codec.Options.Quality, such as "cos=0.99"); each gets one more row
	// per target, after its ratio rows, at the rate its encoder finds for
	// the target.
	Qualities []string
	// Repeat is the number of timed decode passes; 0 means DefaultRepeat.
	Repeat int
	// SampleReads is the number of timed cold sample reads; 0 means
	// DefaultSampleReads.
	SampleReads int
	// MaxNNSamples bounds the samples the nearest-neighbour proxy uses,
	// spread evenly over the dataset; 0 means DefaultMaxNNSamples.
	MaxNNSamples int
	// Device is DeviceCPU (or empty) or DeviceCUDA.
	Device string
	// ChunkBytes, Prefix, GridH, GridW, FitSamples and Workers are passed
	// to ntcb.Options as they are (zero values: ntcb's defaults; Prefix
	// -1 infers the prefix tokens, 0 means none).
	ChunkBytes   int
	Prefix       int
	GridH, GridW int
	FitSamples   int
	Workers      int
	// TaskMetric, when set, adds the task-weighted SNR in that metric to
	// every row (Row.TaskSNR); with TaskFit the learned codecs are also
	// fitted in it (ntc fit --task-metric).
	TaskMetric *codec.TaskMetric
	TaskFit    bool
	// Files names the inputs for the report; they are not read.
	Files []string
	// Note describes the input for the report (for example that it is the
	// embedded sample).
	Note string
	// Seed chooses the samples of the cold reads; 0 is a fixed default.
	Seed uint64
	// Progress, if set, makes one Stage per measured row; total counts
	// samples encoded, decoded and read.
	Progress func(label string, total int) Stage
}

func (o *Options) ensureDefaults() error {
	if len(o.Codecs) == 0 {
		o.Codecs = DefaultCodecs()
	}
	if len(o.Ratios) == 0 {
		o.Ratios = DefaultRatios
	}
	if o.Repeat == 0 {
		o.Repeat = DefaultRepeat
	}
	if o.SampleReads == 0 {
		o.SampleReads = DefaultSampleReads
	}
	if o.MaxNNSamples == 0 {
		o.MaxNNSamples = DefaultMaxNNSamples
	}
	if o.Seed == 0 {
		o.Seed = 1
	}
	switch o.Device {
	case "", DeviceCPU:
		o.Device = DeviceCPU
	case DeviceCUDA:
		return fmt.Errorf("--device %s: %w", o.Device, ErrNoCUDA)
	default:
		return fmt.Errorf("%w %q (want %s or %s)", ErrDevice, o.Device, DeviceCPU, DeviceCUDA)
	}
	if o.Repeat < 1 || o.SampleReads < 0 || o.MaxNNSamples < 2 {
		return fmt.Errorf("%w: repeat %d, sample reads %d, nn samples %d", ErrOptions, o.Repeat, o.SampleReads, o.MaxNNSamples)
	}
	for _, r := range o.Ratios {
		if !(r >= 1) || math.IsInf(r, 0) {
			return fmt.Errorf("%w: ratio %g is below 1", ErrOptions, r)
		}
	}
	for _, n := range o.Codecs {
		if _, err := codec.Lookup(n); err != nil {
			return err
		}
	}
	if o.TaskFit && o.TaskMetric == nil {
		return fmt.Errorf("%w: TaskFit without a TaskMetric", ErrOptions)
	}
	return nil
}

// Report is the result of Run.
type Report struct {
	// Input describes the dataset and the machine.
	Input Input `json:"input"`
	// Device is where decoding ran.
	Device string `json:"device"`
	// Repeat is the number of timed decode passes asked for; DecodePasses
	// the number made, at least Repeat and enough for MinTimedChunks chunk
	// decodes.
	Repeat       int `json:"repeat"`
	DecodePasses int `json:"decode_passes"`
	// SampleReads is the number of timed cold sample reads per row.
	SampleReads int `json:"sample_reads"`
	// Rows holds the raw float16 reference, then one row per codec and
	// target ratio, in the order asked for.
	Rows []Row `json:"rows"`
	// Skipped lists the (codec, rate) pairs that failed, with the reason.
	Skipped []Skipped `json:"skipped,omitempty"`
}

// Input describes the measured dataset.
type Input struct {
	Files []string `json:"files"`
	Note  string   `json:"note,omitempty"`
	// Shape is [N, T, D]: samples, tokens per sample, dims per token.
	Shape  []int        `json:"shape"`
	DType  string       `json:"dtype"`
	Layout codec.Layout `json:"layout"`
	// FP16Bytes is the size of the tokens as raw float16.
	FP16Bytes int64 `json:"fp16_bytes"`
	// ChunkSamples is the number of samples per chunk (the last chunk may
	// hold fewer).
	ChunkSamples int `json:"chunk_samples"`
	// FitSamples is the number of samples, spread over the input, that a
	// learned codec is fitted on.
	FitSamples int     `json:"fit_samples"`
	Machine    Machine `json:"machine"`
	// TaskMetric describes the metric of Row.TaskSNR, nil without one.
	TaskMetric *TaskMetricInfo `json:"task_metric,omitempty"`
}

// TaskMetricInfo describes the task metric of a report.
type TaskMetricInfo struct {
	// Source is the metric's file; Kind and SHA256 as in a fitted file's
	// metadata (the hash of the trace-normalised matrix).
	Source string `json:"source"`
	Kind   string `json:"kind"`
	SHA256 string `json:"sha256"`
	// Fitted reports whether the learned codecs were fitted in it, with
	// Blend the metric's share of their fitted distortion.
	Fitted bool    `json:"fitted"`
	Blend  float64 `json:"blend,omitempty"`
}

// Skipped is a (codec, rate) that could not be measured.
type Skipped struct {
	Codec         string  `json:"codec"`
	TargetRatio   float64 `json:"target_ratio"`
	TargetQuality string  `json:"target_quality,omitempty"`
	Err           string  `json:"error"`
}

// Label names the skipped row as Row.Label does.
func (s Skipped) Label() string {
	return Row{Codec: s.Codec, TargetRatio: s.TargetRatio, TargetQuality: s.TargetQuality}.Label()
}

// Row holds the figures of one codec at one rate. Durations are in
// milliseconds, throughputs in MB/s (10^6 float16 bytes per second).
type Row struct {
	// Codec is the codec's name, or RawCodec for the reference row.
	Codec string
	// TargetRatio is the ratio asked of a rate-controlled codec; 0 for
	// fixed-rate codecs, the reference row and quality targets.
	TargetRatio float64
	// TargetQuality is the quality target asked of a rate-controlled codec
	// instead of a ratio (Options.Qualities), such as "cos=0.99".
	TargetQuality string
	// Lossless reports whether the codec is lossless for float16 input
	// and the input is float16.
	Lossless bool
	// FileBytes is the size of the whole .ntcb file, ModelBytes that of
	// the codec's model inside it; Chunks its number of chunks.
	FileBytes  int64
	ModelBytes int
	Chunks     int
	// Ratio = float16 bytes / FileBytes; BitsPerValue = 8 FileBytes / values.
	Ratio        float64
	BitsPerValue float64
	// EncodeMBps and DecodeMBps are float16 MB per second of wall time.
	// Encoding starts from the fitted model: it does not count the fit.
	EncodeMBps float64
	DecodeMBps float64
	// FitSeconds is the wall time of fitting a learned codec's model (as
	// 'ntc fit' does) before encoding; 0 for codecs that fit none.
	FitSeconds float64
	// DecodeP50ms and DecodeP99ms are the per-chunk decode latencies.
	DecodeP50ms float64
	DecodeP99ms float64
	// SampleP50ms and SampleP99ms are the cold single-sample latencies.
	SampleP50ms float64
	SampleP99ms float64
	// Quality compares the decoded file with the input.
	Quality metrics.Summary
	// NNTop1 and NNTop5 are the nearest-neighbour agreements (NaN with
	// fewer than two samples).
	NNTop1 float64
	NNTop5 float64
	// TaskSNR is the task-weighted SNR in dB in Options.TaskMetric (NaN
	// without one; docs/metrics.md).
	TaskSNR float64
}

// Label names the row for tables and charts: the codec, with its target
// for rate-controlled codecs ("ntc@8x", "ntc@cos=0.99").
func (r Row) Label() string {
	switch {
	case r.TargetQuality != "":
		return r.Codec + "@" + r.TargetQuality
	case r.TargetRatio > 0:
		return fmt.Sprintf("%s@%gx", r.Codec, r.TargetRatio)
	}
	return r.Codec
}

// Run measures every codec of opts on the samples of src, which it reads
// once into memory (N*T*D float32). Codecs that fail are listed in
// Report.Skipped; Run fails only when the input cannot be read, the
// options are wrong, or ctx is cancelled.
func Run(ctx context.Context, src ntcb.Source, opts Options) (*Report, error) {
	if err := opts.ensureDefaults(); err != nil {
		return nil, err
	}
	ds, err := load(ctx, src, &opts)
	if err != nil {
		return nil, err
	}
	rep := &Report{
		Input: Input{
			Files: opts.Files, Note: opts.Note, Shape: []int{ds.n, ds.layout.Tokens, ds.layout.Dim},
			DType: src.DType(), Layout: ds.layout, FP16Bytes: ds.fp16Bytes(), ChunkSamples: min(ds.perChunk, ds.n),
			FitSamples: ntcb.FitCount(opts.FitSamples, ds.n, ds.layout),
			Machine:    DescribeMachine(),
		},
		Device: opts.Device, Repeat: opts.Repeat, SampleReads: opts.SampleReads,
		DecodePasses: passes(&opts, (ds.n+ds.perChunk-1)/ds.perChunk),
	}
	if rep.Input.Files == nil {
		rep.Input.Files = []string{}
	}
	if tm := opts.TaskMetric; tm != nil {
		sum := tm.SHA256()
		rep.Input.TaskMetric = &TaskMetricInfo{Source: tm.Source, Kind: tm.Kind, SHA256: hex.EncodeToString(sum[:]), Fitted: opts.TaskFit}
		if opts.TaskFit {
			rep.Input.TaskMetric.Blend = tm.Blend
		}
	}
	raw, err := ds.measureRaw(ctx, &opts)
	if err != nil {
		return nil, err
	}
	rep.Rows = append(rep.Rows, raw)
	for _, name := range opts.Codecs {
		rows, skipped, err := ds.measureCodec(ctx, name, &opts)
		if err != nil {
			return nil, err
		}
		rep.Rows = append(rep.Rows, rows...)
		rep.Skipped = append(rep.Skipped, skipped...)
	}
	return rep, nil
}
