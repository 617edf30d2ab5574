package ntcb

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/metrics"
)

// Defaults for Options.
const (
	// DefaultCodec is the codec Encode uses when Options.Codec is empty.
	DefaultCodec = "ntc"
	// DefaultChunkBytes is the float16 size of the tokens in one chunk.
	DefaultChunkBytes = 4 << 20
	// DefaultFitBytes bounds the float32 training data a fit holds. The
	// learned codec's fit needs about 15 times its training data in memory,
	// so this keeps a default encode near 0.5 GB; it holds all of a file
	// of 200 DeiT-Tiny samples, or 14 CLIP-L samples spread over a dataset.
	DefaultFitBytes = 32 << 20
)

// Progress receives how much work is done; libraries call it, the command
// line draws it. Implementations must be safe for use from one goroutine at
// a time (Encode calls it from one).
type Progress interface {
	// Add reports n more samples done.
	Add(n int)
}

// Phaser is a Progress that is also told when each phase of the work
// starts, so that it can show the phases apart with rates of their own:
// a fit reads its samples ("fit: read samples"), runs the learned codec's
// PCA and rate search ("fit: PCA", "fit: rate search", see
// codec.FitPhasePCA), then Encode encodes ("encode"). After Phase, Add
// counts units (unit: "samples", "steps") of that phase, of total (0:
// unknown).
type Phaser interface {
	Progress
	Phase(name string, total int, unit string)
}

// Phase names of Encode and Fit, as Phaser.Phase gets them; the codec's
// phases follow "fit: ".
const (
	PhaseFitRead = "fit: read samples"
	PhaseEncode  = "encode"
)

// phase tells p, when it is a Phaser, that a phase starts.
func phase(p Progress, name string, total int, unit string) {
	if ph, ok := p.(Phaser); ok {
		ph.Phase(name, total, unit)
	}
}

// codecProgress turns a codec's fit progress into phases and steps of p.
func codecProgress(p Progress) func(string, int, int) {
	ph, ok := p.(Phaser)
	if !ok {
		return nil
	}
	cur, last := "", 0
	return func(name string, done, total int) {
		if name != cur {
			cur, last = name, 0
			ph.Phase("fit: "+name, total, "steps")
		}
		if done > last {
			ph.Add(done - last)
			last = done
		}
	}
}

// Options configure Encode and Fit. The zero value encodes with the default
// codec, its default rate, a default chunk size and an inferred layout.
type Options struct {
	// Codec names the codec; empty means DefaultCodec (or the model's).
	Codec string
	// CodecOptions are passed to the codec (ratio, quality target).
	CodecOptions codec.Options
	// Model, when set, is a fitted model to encode with instead of fitting.
	Model *Model
	// ModelRef records Model in the file by reference (its SHA-256 and
	// length) instead of storing a copy, so that many files share one
	// model file; a reader finds the model by its hash. ModelFile is the
	// model file's name, recorded in the metadata as where to look first.
	// Without a Model (the encode fits its own), the model is stored.
	ModelRef  bool
	ModelFile string
	// SharedModel tells rate control, in a fit, that the model will serve
	// files beyond these samples (a model file for a growing dataset): its
	// bytes are not counted against the ratio. Otherwise they are spread
	// over the samples at hand, as in one file or one dataset that holds
	// the model once.
	SharedModel bool
	// ShardSamples tells rate control that the samples will be stored as
	// files of this many samples each, each with its own framing; 0 means
	// one file. ExtraBytes counts other bytes that hold the samples (a
	// dataset's index, the model file's framing).
	ShardSamples int
	ExtraBytes   int64
	// ChunkBytes is the float16 size of the tokens in one chunk; 0 means
	// DefaultChunkBytes. A chunk holds at least one sample.
	ChunkBytes int
	// Prefix is the number of prefix tokens; negative means infer (see
	// codec.InferLayout). GridH and GridW set the patch grid; 0 infers.
	Prefix       int
	GridH, GridW int
	// Meta holds user key=value pairs kept in the file's metadata.
	Meta map[string]string
	// FitSamples is the number of samples a learned codec is fitted on,
	// spread evenly over the dataset; 0 means as many as fit in
	// DefaultFitBytes of float32.
	FitSamples int
	// Workers is the number of chunks encoded in parallel; 0 means
	// GOMAXPROCS.
	Workers int
	// Tool names the writing program in the metadata.
	Tool string
	// Progress, if set, is told of every chunk written.
	Progress Progress
	// NoReplace makes EncodeFile refuse to replace a file at its path:
	// the error wraps fs.ErrExist.
	NoReplace bool
}

// Result describes an encoded file.
type Result struct {
	// Codec is the codec's registered name.
	Codec string `json:"codec"`
	// Samples and Chunks count what was written.
	Samples int `json:"samples"`
	Chunks  int `json:"chunks"`
	// Layout is the token layout of every sample.
	Layout codec.Layout `json:"layout"`
	// FileBytes is the size of the whole file; FP16Bytes the size of the
	// same tokens as raw float16.
	FileBytes int64 `json:"file_bytes"`
	FP16Bytes int64 `json:"fp16_bytes"`
	// ModelBytes is the size of the codec's stored model (0 if none, or
	// if the file holds it by reference).
	ModelBytes int `json:"model_bytes"`
	// ModelSHA256 is the hex SHA-256 of the model, when the file holds it
	// by reference.
	ModelSHA256 string `json:"model_sha256,omitempty"`
	// Ratio = FP16Bytes / FileBytes; BitsPerValue = 8*FileBytes / values.
	Ratio        float64 `json:"ratio"`
	BitsPerValue float64 `json:"bits_per_value"`
	// Quality compares the decoded file with the input.
	Quality metrics.Summary `json:"quality"`
	// TargetRatio and TargetQuality are the targets the codec aimed at:
	// the options', the learned codec's default ratio, or the model's.
	TargetRatio   float64 `json:"target_ratio,omitempty"`
	TargetQuality string  `json:"target_quality,omitempty"`
	// Warnings say what the file's success hides: a ratio or quality
	// target missed by more than 2%, decoded tokens that barely resemble
	// the input, data whose statistics differ from the model's fit data.
	Warnings []string `json:"warnings,omitempty"`

	acc    *metrics.Accumulator
	target *target
}

// Accumulator returns the statistics Quality summarises, to merge with
// those of other files.
func (r *Result) Accumulator() *metrics.Accumulator { return r.acc }

// Encode writes the samples of src to w as a complete .ntcb stream and
// closes the container writer (not the underlying writer).
func Encode(ctx context.Context, w *container.Writer, src Source, opts Options) (*Result, error) {
	res, meta, err := encode(ctx, w, src, opts)
	if err != nil {
		return nil, err
	}
	if err := w.Close(meta); err != nil {
		return nil, err
	}
	res.finish(w.Offset())
	return res, nil
}

// EncodeFile encodes src into a new file at path. The file appears only when
// encoding succeeds; on any error or cancellation nothing is left behind.
func EncodeFile(ctx context.Context, path string, src Source, opts Options) (*Result, error) {
	create := container.Create
	if opts.NoReplace {
		create = container.CreateNew
	}
	f, err := create(path)
	if err != nil {
		return nil, err
	}
	defer f.Abort()
	res, meta, err := encode(ctx, f.Writer, src, opts)
	if err == nil {
		err = f.Commit(meta)
	}
	var se *SampleError
	if errors.As(err, &se) {
		return nil, err // it names the input
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	res.finish(f.Offset())
	return res, nil
}

func (r *Result) finish(size int64) {
	r.FileBytes = size
	r.Ratio = float64(r.FP16Bytes) / float64(size)
	r.BitsPerValue = 8 * float64(size) / float64(int64(r.Samples)*int64(r.Layout.Values()))
	if r.target != nil {
		r.Warnings = r.target.warnings(r)
	}
}

// encode writes the model and chunks to w and returns the metadata to close
// the container with.
func encode(ctx context.Context, w *container.Writer, src Source, opts Options) (*Result, []byte, error) {
	tokens, dim := src.Shape()
	layout, err := opts.layout(tokens, dim)
	if err != nil {
		return nil, nil, err
	}
	perChunk := opts.samplesPerChunk(layout)
	meta := &Metadata{
		Format: FormatName, Tool: opts.Tool, Layout: layout, DType: src.DType(),
		Shape: []int{src.Len(), tokens, dim}, Inputs: src.Inputs(), Meta: opts.Meta,
	}
	c, err := opts.codecFor(ctx, src, layout, perChunk, meta, nil)
	if err != nil {
		return nil, nil, err
	}
	meta.Codec, meta.CodecParams = c.Name(), c.Params()
	if tm, ok := opts.Model.taskMetric(); ok {
		// The fit's metric is not in the model blob: keep the model
		// file's record of it.
		if meta.CodecParams == nil {
			meta.CodecParams = map[string]any{}
		}
		meta.CodecParams["task_metric"] = tm
	}
	spec, err := codec.Lookup(c.Name())
	if err != nil {
		return nil, nil, err
	}
	res := &Result{Codec: c.Name(), Samples: src.Len(), Layout: layout, FP16Bytes: 2 * int64(src.Len()) * int64(layout.Values())}
	res.target = opts.target(spec)
	res.TargetRatio, res.TargetQuality = res.target.ratio, res.target.quality
	if model := c.Model(); model != nil {
		if opts.ModelRef && opts.Model != nil {
			sha := sha256.Sum256(model)
			if err := w.WriteModelRef(spec.ID, len(model), sha); err != nil {
				return nil, nil, err
			}
			res.ModelSHA256, meta.ModelFile = FormatHash(sha), opts.ModelFile
		} else {
			if err := w.WriteModel(spec.ID, model); err != nil {
				return nil, nil, err
			}
			res.ModelBytes = len(model)
		}
	}
	var stats *statsAcc
	if res.target.model != nil {
		stats = &statsAcc{}
	}
	phase(opts.Progress, PhaseEncode, src.Len(), "samples")
	acc, chunks, err := encodeChunks(ctx, w, src, c, spec.ID, perChunk, opts, stats)
	if err != nil {
		return nil, nil, err
	}
	if stats != nil {
		res.target.data = stats.stats()
	}
	res.Chunks = chunks
	res.Quality, res.acc = acc.Summary(), acc
	mb, err := meta.marshal()
	return res, mb, err
}

func (o *Options) layout(tokens, dim int) (codec.Layout, error) {
	if o.Model != nil && o.Prefix < 0 && o.GridH == 0 && o.GridW == 0 {
		if l := o.Model.Layout; l.Tokens == tokens && l.Dim == dim {
			return l, nil
		}
	}
	l, err := codec.InferLayout(tokens, dim, o.Prefix, o.GridH, o.GridW)
	if err != nil {
		return l, fmt.Errorf("%w: %w", ErrInput, err)
	}
	return l, nil
}

func (o *Options) samplesPerChunk(l codec.Layout) int { return SamplesPerChunk(o.ChunkBytes, l) }

// SamplesPerChunk returns how many samples of layout l a chunk of
// chunkBytes float16 bytes holds (0 means DefaultChunkBytes): at least
// one, and never more values than codec.MaxValues.
func SamplesPerChunk(chunkBytes int, l codec.Layout) int {
	if chunkBytes <= 0 {
		chunkBytes = DefaultChunkBytes
	}
	n := max(1, chunkBytes/(2*l.Values()))
	return min(n, codec.MaxValues/l.Values())
}

// target returns the targets the codec of spec aims at, and what the
// model was fitted on, to check the result against.
func (o *Options) target(spec codec.Spec) *target {
	if m := o.Model; m != nil {
		return &target{ratio: m.TargetRatio, quality: m.TargetQuality, shared: true, model: m.Stats}
	}
	t := &target{ratio: o.CodecOptions.Ratio, quality: o.CodecOptions.Quality}
	if spec.Learned && t.ratio == 0 && t.quality == "" {
		t.ratio = codec.DefaultRatio
	}
	return t
}

// codecFor returns the codec to encode with: the given model's, or a new
// one fitted on a spread of the source's samples, whose statistics it
// adds to stats when stats is not nil.
func (o *Options) codecFor(ctx context.Context, src Source, l codec.Layout, perChunk int, meta *Metadata, stats *statsAcc) (codec.Codec, error) {
	if o.Model != nil {
		if o.Codec != "" && o.Codec != o.Model.Codec {
			return nil, fmt.Errorf("%w: the model is for codec %s, not %s", ErrModel, o.Model.Codec, o.Codec)
		}
		if o.Model.Layout != l {
			return nil, fmt.Errorf("%w: the model was fitted on layout %+v, the data has %+v", ErrModel, o.Model.Layout, l)
		}
		return o.Model.codec()
	}
	name := o.Codec
	if name == "" {
		name = DefaultCodec
	}
	spec, err := codec.Lookup(name)
	if err != nil {
		return nil, err
	}
	copts := o.CodecOptions
	copts.Progress = codecProgress(o.Progress)
	copts.ChunkSamples = perChunk
	copts.TotalSamples = src.Len()
	if o.SharedModel {
		copts.TotalSamples = sharedModelSamples
	}
	if copts.TaskMetric != nil && !spec.Learned {
		return nil, fmt.Errorf("%w: codec %s has no fit to take a task metric", codec.ErrOption, name)
	}
	if spec.Learned && copts.Ratio == 0 && copts.Quality == "" {
		copts.Ratio = codec.DefaultRatio
	}
	if copts.Ratio > 0 {
		copts.Ratio = o.adjustRatio(copts.Ratio, src, l, perChunk, meta)
	}
	var train []float32
	n := 0
	if spec.Learned {
		train, n, err = o.readFitSamples(ctx, src, l)
		if err != nil {
			return nil, err
		}
		if stats != nil {
			stats.add(train, n, l)
		}
	}
	c, err := spec.New(l, train, n, copts)
	if err != nil {
		return nil, locate(err, src, l, func(k int) int { return fitSample(k, n, src.Len()) })
	}
	return c, nil
}

// fitSample returns the dataset index of the k-th of n fit samples spread
// evenly over total.
func fitSample(k, n, total int) int { return int(int64(k) * int64(total) / int64(n)) }

// metadataSlack is what rate control adds to the metadata's size for the
// codec's parameters, which are known only after the fit (about 310 bytes
// for the learned codec).
const metadataSlack = 320

// sharedModelSamples is the number of samples rate control spreads a
// shared model over: so many that its bytes do not count.
const sharedModelSamples = 1 << 30

// adjustRatio turns a target ratio for the whole file (or the files of
// ShardSamples samples each, with ExtraBytes more) into the target for the
// codec's own bytes (model and chunk payloads), taking out the bytes of
// the container: header, block framing, index, metadata and footer.
func (o *Options) adjustRatio(r float64, src Source, l codec.Layout, perChunk int, meta *Metadata) float64 {
	fp16 := 2 * float64(src.Len()) * float64(l.Values())
	per := src.Len()
	if o.ShardSamples > 0 {
		per = o.ShardSamples
	}
	mb, _ := meta.marshal()
	overhead := float64(o.ExtraBytes)
	for first := 0; first < src.Len(); first += per {
		n := min(per, src.Len()-first)
		f := container.Framing{Chunks: (n + perChunk - 1) / perChunk, Models: 1, Samples: n, MetadataLen: len(mb) + metadataSlack}
		if o.ModelRef {
			f.Models, f.ModelRefs = 0, 1
			f.MetadataLen += len(o.ModelFile) + len(`,"model_file":""`)
		}
		for i := first; i < first+n; i++ {
			f.KeyBytes += len(src.Key(i))
		}
		overhead += float64(f.Overhead())
	}
	// Beyond the codec's limit (the container alone may take more than
	// the target leaves), the codec aims at its limit and the result
	// misses: Result.Warnings says so.
	budget := fp16/r - overhead
	if budget <= 0 {
		return codec.MaxRatio
	}
	return min(fp16/budget, codec.MaxRatio)
}

// FitCount returns how many of total samples of layout l a learned codec
// is fitted on when Options.FitSamples is fitSamples.
func FitCount(fitSamples, total int, l codec.Layout) int {
	n := fitSamples
	if n <= 0 {
		n = DefaultFitBytes / (4 * l.Values())
	}
	return max(1, min(n, total))
}

// readFitSamples reads up to FitSamples samples spread evenly over src.
func (o *Options) readFitSamples(ctx context.Context, src Source, l codec.Layout) ([]float32, int, error) {
	n := FitCount(o.FitSamples, src.Len(), l)
	vals := l.Values()
	train := make([]float32, n*vals)
	_, phases := o.Progress.(Phaser)
	phase(o.Progress, PhaseFitRead, n, "samples")
	for k := range n {
		if err := ctx.Err(); err != nil {
			return nil, 0, err
		}
		i := fitSample(k, n, src.Len())
		if err := src.ReadSample(i, train[k*vals:(k+1)*vals]); err != nil {
			return nil, 0, err
		}
		if phases {
			o.Progress.Add(1)
		}
	}
	return train, n, nil
}

// encodeJob is one chunk on its way through the encoding pipeline.
type encodeJob struct {
	n       int
	vals    []float32
	keys    []container.SampleInfo
	payload []byte
	head    int   // the payload's head, when the codec splits it
	parts   []int // each sample's part; nil when not split
	acc     metrics.Accumulator
	stats   statsAcc // when the data is compared with a model's
}

// encodeChunks reads chunks of samples from src in order, encodes them on
// a pool of workers, checks each by decoding it, and writes them in order,
// split into per-sample parts when the codec can (codec.Splitter), so that
// readers can fetch one sample without its chunk. At most 2*workers+1
// chunks are in memory at once.
func encodeChunks(ctx context.Context, w *container.Writer, src Source, c codec.Codec, id uint8, perChunk int, o Options, stats *statsAcc) (*metrics.Accumulator, int, error) {
	l := c.Layout()
	total := src.Len()
	nchunks := (total + perChunk - 1) / perChunk
	fill := func(ci int, j *encodeJob) error {
		first := ci * perChunk
		j.n = min(perChunk, total-first)
		j.vals = grow(j.vals, j.n*l.Values())
		j.keys = j.keys[:0]
		for k := range j.n {
			if err := src.ReadSample(first+k, j.vals[k*l.Values():(k+1)*l.Values()]); err != nil {
				return err
			}
			j.keys = append(j.keys, container.SampleInfo{Key: src.Key(first + k), Tokens: l.Tokens, Dim: l.Dim})
		}
		return nil
	}
	// Check buffers are needed only inside work: one per busy worker.
	var checks sync.Pool
	work := func(ci int, j *encodeJob) error {
		var err error
		if j.payload, err = c.Encode(j.payload[:0], j.vals, j.n); err != nil {
			return locate(err, src, l, func(k int) int { return ci*perChunk + k })
		}
		check, _ := checks.Get().(*[]float32)
		if check == nil {
			check = new([]float32)
		}
		*check = grow(*check, len(j.vals))
		defer checks.Put(check)
		if err := c.Decode(*check, j.payload, j.n); err != nil {
			return fmt.Errorf("chunk %d does not decode: %w", ci, err)
		}
		j.acc = metrics.Accumulator{}
		j.acc.Add(j.vals, *check, l.Dim)
		if stats != nil {
			j.stats = statsAcc{}
			j.stats.add(j.vals, j.n, l)
		}
		j.parts = nil
		if sp, ok := c.(codec.Splitter); ok {
			if j.head, j.parts, err = sp.Split(j.payload, j.n); err != nil {
				return fmt.Errorf("chunk %d does not split into samples: %w", ci, err)
			}
		}
		return nil
	}
	var acc metrics.Accumulator
	emit := func(_ int, j *encodeJob) error {
		var err error
		if j.parts != nil {
			err = w.WriteSplitChunk(id, j.payload, j.head, j.parts, j.keys)
		} else {
			err = w.WriteChunk(id, j.payload, j.keys)
		}
		if err != nil {
			return err
		}
		acc.Merge(&j.acc)
		if stats != nil {
			stats.merge(&j.stats)
		}
		if o.Progress != nil {
			o.Progress.Add(j.n)
		}
		return nil
	}
	if err := ordered(ctx, nchunks, o.Workers, fill, work, emit); err != nil {
		return nil, 0, err
	}
	return &acc, nchunks, nil
}

func grow(s []float32, n int) []float32 {
	if cap(s) < n {
		return make([]float32, n)
	}
	return s[:n]
}
