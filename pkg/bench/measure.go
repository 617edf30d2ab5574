package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// now is the clock of every timing; tests replace it.
var now = time.Now

// since returns the time elapsed on now's clock since t.
func since(t time.Time) time.Duration { return now().Sub(t) }

// dataset is the input held in memory, with what every row compares
// against.
type dataset struct {
	vals     []float32 // n samples of layout.Values() values
	keys     []string
	dtype    string
	n        int
	layout   codec.Layout
	perChunk int // samples per chunk, as ntcb.Encode cuts them
	nnIdx    []int
	nnOrig   [][]float64      // mean-pooled originals of the samples in nnIdx
	nnPos    map[int]int      // sample index -> position in nnIdx
	task     *metrics.TaskSNR // the task metric's empty accumulator, or nil
}

// load reads every sample of src into memory.
func load(ctx context.Context, src ntcb.Source, o *Options) (*dataset, error) {
	tokens, dim := src.Shape()
	l, err := codec.InferLayout(tokens, dim, o.Prefix, o.GridH, o.GridW)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ntcb.ErrInput, err)
	}
	n := src.Len()
	if n <= 0 {
		return nil, fmt.Errorf("%w: no samples", ntcb.ErrInput)
	}
	v := l.Values()
	if int64(n)*int64(v) > math.MaxInt/8 {
		return nil, fmt.Errorf("%w: %d samples of %d values do not fit in memory", ntcb.ErrInput, n, v)
	}
	ds := &dataset{vals: make([]float32, n*v), keys: make([]string, n), dtype: src.DType(), n: n, layout: l}
	for i := range n {
		if i%256 == 0 {
			if err := ctx.Err(); err != nil {
				return nil, err
			}
		}
		if err := src.ReadSample(i, ds.vals[i*v:(i+1)*v]); err != nil {
			return nil, err
		}
		ds.keys[i] = src.Key(i)
	}
	if o.TaskMetric != nil {
		if o.TaskMetric.Dim() != dim {
			return nil, fmt.Errorf("%w %s: [%d, %d] matrix for tokens of %d dims", codec.ErrMetric, o.TaskMetric.Source, o.TaskMetric.Dim(), o.TaskMetric.Dim(), dim)
		}
		if ds.task, err = metrics.NewTaskSNR(o.TaskMetric.Normalized(), dim); err != nil {
			return nil, err
		}
	}
	ds.perChunk = ntcb.SamplesPerChunk(o.ChunkBytes, l)
	ds.nnIdx = spread(n, o.MaxNNSamples)
	ds.nnPos = make(map[int]int, len(ds.nnIdx))
	ds.nnOrig = make([][]float64, len(ds.nnIdx))
	for k, i := range ds.nnIdx {
		ds.nnPos[i] = k
		ds.nnOrig[k] = MeanPool(ds.vals[i*v:(i+1)*v], dim)
	}
	return ds, nil
}

// spread returns min(n, m) indices spread evenly over [0, n).
func spread(n, m int) []int {
	k := min(n, m)
	idx := make([]int, k)
	for j := range k {
		idx[j] = int(int64(j) * int64(n) / int64(k))
	}
	return idx
}

func (ds *dataset) fp16Bytes() int64 { return 2 * int64(ds.n) * int64(ds.layout.Values()) }

// sample returns sample i's values.
func (ds *dataset) sample(i int) []float32 {
	v := ds.layout.Values()
	return ds.vals[i*v : (i+1)*v]
}

// The dataset is the ntcb.Source that codecs encode, with the input's keys
// and dtype, so that the file is the one 'ntc encode' would write.

func (ds *dataset) Len() int          { return ds.n }
func (ds *dataset) Shape() (int, int) { return ds.layout.Tokens, ds.layout.Dim }
func (ds *dataset) DType() string     { return ds.dtype }
func (ds *dataset) Inputs() int       { return 0 }
func (ds *dataset) Key(i int) string  { return ds.keys[i] }
func (ds *dataset) Close() error      { return nil }
func (ds *dataset) ReadSample(i int, dst []float32) error {
	if i < 0 || i >= ds.n || len(dst) != ds.layout.Values() {
		return fmt.Errorf("bench: sample %d of %d", i, ds.n)
	}
	copy(dst, ds.sample(i))
	return nil
}

// firstSamples is the first n samples of a dataset.
type firstSamples struct {
	*dataset
	n int
}

func (f firstSamples) Len() int { return f.n }

// checker compares decoded samples with the originals as they come.
type checker struct {
	ds   *dataset
	acc  metrics.Accumulator
	nn   [][]float64
	task *metrics.TaskSNR // nil without a task metric
}

func newChecker(ds *dataset) *checker {
	c := &checker{ds: ds, nn: make([][]float64, len(ds.nnIdx))}
	if ds.task != nil {
		c.task = ds.task.Clone()
	}
	return c
}

// add compares count decoded samples from first on.
func (c *checker) add(first, count int, dec []float32) {
	v := c.ds.layout.Values()
	c.acc.Add(c.ds.vals[first*v:(first+count)*v], dec[:count*v], c.ds.layout.Dim)
	if c.task != nil {
		c.task.Add(c.ds.vals[first*v:(first+count)*v], dec[:count*v])
	}
	for k := range count {
		if p, ok := c.ds.nnPos[first+k]; ok {
			c.nn[p] = MeanPool(dec[k*v:(k+1)*v], c.ds.layout.Dim)
		}
	}
}

// finish fills the row's quality figures.
func (c *checker) finish(r *Row) error {
	for _, e := range c.nn {
		if e == nil {
			return errors.New("bench: a sample was not decoded")
		}
	}
	r.Quality = c.acc.Summary()
	r.NNTop1, r.NNTop5 = NNAgreement(c.ds.nnOrig, c.nn)
	r.TaskSNR = math.NaN()
	if c.task != nil {
		r.TaskSNR = c.task.SNR()
	}
	return nil
}

// timing collects the latencies of one row.
type timing struct {
	chunk, sample []time.Duration
	decoded       int64 // float16 bytes decoded in the timed passes
}

func (t *timing) finish(r *Row) {
	var total time.Duration
	for _, d := range t.chunk {
		total += d
	}
	if total > 0 {
		r.DecodeMBps = float64(t.decoded) / total.Seconds() / 1e6
	}
	r.DecodeP50ms, r.DecodeP99ms = percentileMs(t.chunk, 0.50), percentileMs(t.chunk, 0.99)
	r.SampleP50ms, r.SampleP99ms = percentileMs(t.sample, 0.50), percentileMs(t.sample, 0.99)
}

// percentileMs returns the q-quantile of ds in milliseconds by the
// nearest-rank method (the smallest value with at least q of the values at
// or below it), 0 when ds is empty.
func percentileMs(ds []time.Duration, q float64) float64 {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	k := int(float64(len(s))*q+0.999999) - 1
	k = min(max(k, 0), len(s)-1)
	return float64(s[k]) / float64(time.Millisecond)
}

// passes returns the number of timed decode passes over chunks chunks:
// o.Repeat, or more so that at least MinTimedChunks decodes are timed.
func passes(o *Options, chunks int) int {
	return max(o.Repeat, (MinTimedChunks+chunks-1)/max(chunks, 1))
}

// sampleOrder returns the samples of the cold reads, the same for every row
// with the same chunking: random, and when there are several chunks, each
// in another chunk than the one before.
func (ds *dataset) sampleOrder(o *Options, chunkOf func(int) int) []int {
	r := rand.New(rand.NewPCG(o.Seed, 0x6e7463))
	idx := make([]int, o.SampleReads)
	last := -1
	multi := ds.n > ds.perChunk
	for k := range idx {
		i := r.IntN(ds.n)
		for multi && chunkOf(i) == last {
			i = r.IntN(ds.n)
		}
		idx[k], last = i, chunkOf(i)
	}
	return idx
}

// touch writes to every page of b so that page faults on fresh memory are
// not timed.
func touch[T any](b []T) {
	clear(b[:cap(b)])
}

func (ds *dataset) stage(o *Options, label string) Stage {
	if o.Progress == nil {
		return nopStage{}
	}
	chunks := (ds.n + ds.perChunk - 1) / ds.perChunk
	return o.Progress(label, ds.n*(2+passes(o, chunks))+o.SampleReads)
}

type nopStage struct{}

func (nopStage) Add(int) {}
func (nopStage) Done()   {}

// measureRaw measures the reference row: raw float16, converted from
// float32 in chunks of the same size as the files' and back.
func (ds *dataset) measureRaw(ctx context.Context, o *Options) (Row, error) {
	st := ds.stage(o, RawCodec)
	defer st.Done()
	v := ds.layout.Values()
	row := Row{Codec: RawCodec, Lossless: ds.dtype == "float16", FileBytes: ds.fp16Bytes(), Ratio: 1, BitsPerValue: 16}
	row.Chunks = (ds.n + ds.perChunk - 1) / ds.perChunk
	raw := make([]uint16, len(ds.vals))
	touch(raw)
	f16.Encode(raw[:min(ds.perChunk, ds.n)*v], ds.vals[:min(ds.perChunk, ds.n)*v]) // warm-up
	runtime.GC()
	start := now()
	for first := 0; first < ds.n; first += ds.perChunk {
		end := min(first+ds.perChunk, ds.n)
		f16.Encode(raw[first*v:end*v], ds.vals[first*v:end*v])
	}
	row.EncodeMBps = float64(ds.fp16Bytes()) / since(start).Seconds() / 1e6
	st.Add(ds.n)

	out := make([]float32, min(ds.perChunk, ds.n)*v)
	chk := newChecker(ds)
	var tm timing
	for pass := range passes(o, row.Chunks) + 1 {
		for first := 0; first < ds.n; first += ds.perChunk {
			if err := ctx.Err(); err != nil {
				return row, err
			}
			end := min(first+ds.perChunk, ds.n)
			t := now()
			f16.Decode(out[:(end-first)*v], raw[first*v:end*v])
			d := since(t)
			if pass == 0 {
				chk.add(first, end-first, out)
			} else {
				tm.chunk = append(tm.chunk, d)
				tm.decoded += 2 * int64(end-first) * int64(v)
			}
			st.Add(end - first)
		}
	}
	buf := make([]float32, v)
	for _, i := range ds.sampleOrder(o, func(i int) int { return i / ds.perChunk }) {
		t := now()
		f16.Decode(buf, raw[i*v:(i+1)*v])
		tm.sample = append(tm.sample, since(t))
		st.Add(1)
	}
	tm.finish(&row)
	return row, chk.finish(&row)
}

// RateControlled reports whether the codec takes a target ratio for
// samples of layout l: fixed formats refuse one with codec.ErrOption (and
// accept nil training data, as the Spec contract says, so the probe costs
// nothing).
func RateControlled(spec codec.Spec, l codec.Layout, ratio float64) bool {
	if spec.Learned {
		return true
	}
	_, err := spec.New(l, nil, 0, codec.Options{Ratio: ratio})
	return !errors.Is(err, codec.ErrOption)
}

// rate is what a rate-controlled codec is asked for: a ratio or a quality
// target; the zero value is a fixed-rate codec's own rate.
type rate struct {
	ratio   float64
	quality string
}

// measureCodec measures one codec: one row for a fixed-rate codec, one per
// target ratio and quality target for a rate-controlled one. Failures are
// returned as skipped rows; only cancellation is an error.
func (ds *dataset) measureCodec(ctx context.Context, name string, o *Options) ([]Row, []Skipped, error) {
	spec, err := codec.Lookup(name)
	if err != nil {
		return nil, nil, err
	}
	rates := []rate{{}}
	if RateControlled(spec, ds.layout, o.Ratios[0]) {
		rates = rates[:0]
		for _, r := range o.Ratios {
			rates = append(rates, rate{ratio: r})
		}
		for _, q := range o.Qualities {
			rates = append(rates, rate{quality: q})
		}
	}
	var rows []Row
	var skipped []Skipped
	for _, r := range rates {
		row, err := ds.measure(ctx, spec, r, o)
		if ctx.Err() != nil {
			return nil, nil, ctx.Err()
		}
		if err != nil {
			skipped = append(skipped, Skipped{Codec: name, TargetRatio: r.ratio, TargetQuality: r.quality, Err: err.Error()})
			continue
		}
		rows = append(rows, row)
	}
	return rows, skipped, nil
}

// measure encodes the dataset with one codec at one rate into an in-memory
// .ntcb file and measures decoding it. A learned codec's model is fitted
// first, on its own clock, as 'ntc fit' would; the encode then starts from
// it, as 'ntc encode --model' would, and writes what 'ntc encode' writes.
func (ds *dataset) measure(ctx context.Context, spec codec.Spec, target rate, o *Options) (Row, error) {
	row := Row{Codec: spec.Name, TargetRatio: target.ratio, TargetQuality: target.quality, Lossless: spec.Lossless && ds.dtype == "float16"}
	st := ds.stage(o, row.Label())
	defer st.Done()

	eopts := ntcb.Options{
		Codec: spec.Name, CodecOptions: codec.Options{Ratio: target.ratio, Quality: target.quality}, ChunkBytes: o.ChunkBytes,
		Prefix: o.Prefix, GridH: o.GridH, GridW: o.GridW, FitSamples: o.FitSamples,
		Workers: o.Workers, Tool: "ntc bench",
	}
	if o.TaskFit && spec.Learned {
		eopts.CodecOptions.TaskMetric = o.TaskMetric
	}
	if spec.Learned {
		runtime.GC()
		start := now()
		m, err := ntcb.Fit(ctx, ds, eopts)
		if err != nil {
			return row, err
		}
		row.FitSeconds = since(start).Seconds()
		eopts.Model = m
	}
	// Warm-up: encode the first chunk's samples, untimed, so that one-time
	// set-up (entropy coders, tables) is not charged to the timed run.
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		return row, err
	}
	if _, err := ntcb.Encode(ctx, w, firstSamples{ds, min(ds.perChunk, ds.n)}, eopts); err != nil {
		return row, err
	}
	buf.Reset()
	buf.Grow(int(ds.fp16Bytes()) + 1<<20)
	touch(buf.AvailableBuffer())
	if w, err = container.NewWriter(&buf); err != nil {
		return row, err
	}
	eopts.Progress = st
	runtime.GC()
	start := now()
	res, err := ntcb.Encode(ctx, w, ds, eopts)
	if err != nil {
		return row, err
	}
	row.EncodeMBps = float64(ds.fp16Bytes()) / since(start).Seconds() / 1e6
	row.FileBytes, row.ModelBytes, row.Chunks = res.FileBytes, res.ModelBytes, res.Chunks
	row.Ratio, row.BitsPerValue = res.Ratio, res.BitsPerValue

	file := buf.Bytes()
	rd, err := ntcb.NewReader(bytes.NewReader(file), int64(len(file)))
	if err != nil {
		return row, err
	}
	cr := rd.Container()
	v := ds.layout.Values()
	chk := newChecker(ds)
	var tm timing
	var out []float32
	runtime.GC()
	// Pass 0 warms up (loads the model, sizes the buffers) and checks
	// quality; the next passes are timed.
	for pass := range passes(o, cr.NumChunks()) + 1 {
		for c := range cr.NumChunks() {
			if err := ctx.Err(); err != nil {
				return row, err
			}
			ch := cr.Chunk(c)
			t := now()
			out, err = rd.ReadChunk(c, out)
			d := since(t)
			if err != nil {
				return row, err
			}
			if pass == 0 {
				chk.add(ch.First, ch.Count, out)
			} else {
				tm.chunk = append(tm.chunk, d)
				tm.decoded += 2 * int64(ch.Count) * int64(v)
			}
			st.Add(ch.Count)
		}
	}
	// Cold reads: the sample's bytes must not be in memory decoded. A
	// split chunk is read by sample (the chunk's head and the sample's
	// part), uncached, so the warm reader serves. A whole chunk is kept by
	// the reader: with several chunks, consecutive samples come from
	// different chunks of the warm reader; with one, each read gets a
	// fresh reader (opened untimed), so the read also loads the model.
	fresh := cr.NumChunks() == 1 && !cr.ChunkSplit(0)
	chunkOf := func(i int) int { c, _ := cr.SampleChunk(i); return c }
	sbuf := make([]float32, v)
	runtime.GC()
	for _, i := range ds.sampleOrder(o, chunkOf) {
		if err := ctx.Err(); err != nil {
			return row, err
		}
		fr := rd
		if fresh {
			if fr, err = ntcb.NewReader(bytes.NewReader(file), int64(len(file))); err != nil {
				return row, err
			}
		}
		t := now()
		sbuf, err = fr.ReadSample(i, sbuf)
		d := since(t)
		if err != nil {
			return row, err
		}
		tm.sample = append(tm.sample, d)
		st.Add(1)
	}
	tm.finish(&row)
	return row, chk.finish(&row)
}
