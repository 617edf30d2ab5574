package codec

import (
	"fmt"
	"math"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"github.com/ntc-project/ntc/internal/f16"
	"gonum.org/v1/gonum/mat"
)

const (
	// DefaultRatio is the ntc codec's target ratio against float16 when
	// neither a ratio nor a quality target is given.
	DefaultRatio = 8
	// defaultChunkBytes is the float16 size of a chunk assumed by rate
	// control when Options.ChunkSamples is 0.
	defaultChunkBytes = 4 << 20
	// defaultLambda is the trellis' rate weight, in 1/256 of a squared
	// step per bit.
	defaultLambda = 72
)

// parseQuality parses "cos=0.99" or "snr=20".
func parseQuality(s string) (uint8, float32, error) {
	k, v, ok := strings.Cut(strings.TrimSpace(s), "=")
	if !ok {
		return 0, 0, fmt.Errorf("%w: quality %q is not cos=X or snr=X", ErrOption, s)
	}
	f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
	if err != nil {
		return 0, 0, fmt.Errorf("%w: quality %q: %v", ErrOption, s, err)
	}
	switch strings.ToLower(strings.TrimSpace(k)) {
	case "cos":
		if !(f > 0 && f < 1) {
			return 0, 0, fmt.Errorf("%w: cosine target %g not in (0, 1)", ErrOption, f)
		}
		return qualityCos, float32(f), nil
	case "snr":
		if !(f > 0 && f <= 80) {
			return 0, 0, fmt.Errorf("%w: SNR target %g dB not in (0, 80]", ErrOption, f)
		}
		return qualitySNR, float32(f), nil
	}
	return 0, 0, fmt.Errorf("%w: quality %q: want cos= or snr=", ErrOption, s)
}

// ntcLambda is the rate weight new models get; a variable for
// experiments.
var ntcLambda uint8 = defaultLambda

// ntcOutlierFactor is how many times the median squared distance from the
// mean a grid token must exceed to be coded as an outlier.
const ntcOutlierFactor = 64

// ntcMaxK caps the number of components, for experiments; 0 means none.
var ntcMaxK = 0

func newNTC(l Layout, train []float32, n int, opts Options) (Codec, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if l.Dim > math.MaxUint16 {
		return nil, fmt.Errorf("%w: ntc supports at most %d dims", ErrBadLayout, math.MaxUint16)
	}
	nv, err := l.CheckCount(n)
	if err != nil {
		return nil, fmt.Errorf("ntc needs training samples: %w", err)
	}
	if len(train) != nv {
		return nil, fmt.Errorf("%w: %d training values for %d samples, want %d", ErrBadLayout, len(train), n, nv)
	}
	if err := checkFinite(train); err != nil {
		return nil, err
	}
	if opts.Ratio != 0 && opts.Quality != "" {
		return nil, fmt.Errorf("%w: give a ratio or a quality target, not both", ErrOption)
	}
	if opts.Ratio < 0 || opts.Ratio > MaxRatio || opts.ChunkSamples < 0 {
		return nil, fmt.Errorf("%w: ratio %g, chunk samples %d", ErrOption, opts.Ratio, opts.ChunkSamples)
	}
	var qkind uint8
	var qtarget float32
	if opts.Quality != "" {
		if qkind, qtarget, err = parseQuality(opts.Quality); err != nil {
			return nil, err
		}
	}
	if opts.TaskMetric != nil {
		if err := opts.TaskMetric.check(l); err != nil {
			return nil, err
		}
	}
	report := func(phase string, done, total int) {
		if opts.Progress != nil {
			opts.Progress(phase, done, total)
		}
	}
	report(FitPhasePCA, 0, 1)
	full := fitPCA(l, train, n, opts.TaskMetric)
	report(FitPhasePCA, 1, 1)
	if full.fit != nil {
		full.fit.progress = opts.Progress
	}
	if ntcMaxK > 0 && full.k > ntcMaxK {
		full = full.truncate(ntcMaxK)
	}
	full.lambda = ntcLambda
	if tm := full.task; tm != nil && tm.fields != nil {
		csc, err := full.classSteps(tm)
		if err != nil {
			return nil, fmt.Errorf("task fields %s: %w", tm.Source, err)
		}
		full.setClassSteps(csc)
	}
	cs := full.transform(full.fillOutliers(train, n, full.outliers(train, n)), n)
	full.fitSigma(cs)

	chunk := opts.ChunkSamples
	if chunk == 0 {
		chunk = max(1, defaultChunkBytes/(2*l.Values()))
	}
	code, err := full.fitStep(train, n, cs, chunk, opts.Ratio, max(n, opts.TotalSamples), qkind, qtarget)
	if err != nil {
		return nil, err
	}
	// High rates need the leading basis rows at float16 precision: refit
	// with them.
	if h := full.chooseHi16(full.stepCode); h > 0 {
		full.setHi16(h)
		cs = full.transform(full.fillOutliers(train, n, full.outliers(train, n)), n)
		full.fitSigma(cs)
		if code, err = full.fitStep(train, n, cs, chunk, opts.Ratio, max(n, opts.TotalSamples), qkind, qtarget); err != nil {
			return nil, err
		}
	}
	c := full.truncate(full.componentsFor(code))
	c.fit = nil
	return c, nil
}

// fitStep sets the step code (and the rANS tables) for a ratio or quality
// target and returns the step code that sets the number of components.
func (c *ntcCodec) fitStep(train []float32, n int, cs *coefSet, chunk int, ratio float64, total int, qkind uint8, qtarget float32) (int32, error) {
	var code int32
	switch {
	case qkind != qualityNone:
		c.qkind, c.qtarget = qkind, qtarget
		code = c.fitQuality(train, n, cs)
		c.stepCode = code
		q := c.quantizeChunks(cs, n, chunk, code, ntcFitPasses)
		c.setTables(q)
		// Keep the components a chunk needing a finer step may use.
		code -= 256
	default:
		if ratio == 0 {
			ratio = DefaultRatio
		}
		if ratio < 1 {
			return 0, fmt.Errorf("%w: ratio %g below 1", ErrOption, ratio)
		}
		q := c.fitRatio(train, n, cs, chunk, ratio, total)
		code = q.code
		c.stepCode = code
		c.setTables(q)
	}
	return code, nil
}

// fitPCA returns a codec with all D components: the mean and eigenvectors
// of the grid tokens' covariance, rounded to float16. With a task metric
// (and a blend above 0) the components are those of the tokens whitened
// by the metric: with A the blended metric and S = A^(1/2), the basis rows
// are S^-1 v for the eigenvectors v of S C S (C the covariance), so that
// one step size for every coefficient spends the bits as reverse
// water-filling in the metric would; the forward projection is the
// rows' dual (see forward).
func fitPCA(l Layout, train []float32, n int, tm *TaskMetric) *ntcCodec {
	D := l.Dim
	c := &ntcCodec{layout: l, dim: D, mean: make([]float32, D), pmean: prefixMeans(l, train, n), mver: ntcModelVersion, atabs: priorANSTables(ansPlainFrom(ntcModelVersion))}
	c.blocks, c.groups = gridBlocks(l)
	if tm != nil && tm.Blend > 0 {
		c.task = tm
	}
	grid := l.GridH * l.GridW
	rows := n * grid
	if rows == 0 {
		c.finish()
		return c
	}
	// Outliers: grid tokens farther from the mean than ntcOutlierFactor
	// times the median squared distance are coded apart and left out of
	// the fit, so that a few huge tokens cannot take over the components.
	mean := make([]float64, D)
	for s := range n {
		for t := l.Prefix; t < l.Tokens; t++ {
			for d, v := range train[(s*l.Tokens+t)*D:][:D] {
				mean[d] += float64(v)
			}
		}
	}
	for d := range mean {
		mean[d] /= float64(rows)
	}
	dist := make([]float64, 0, rows)
	for s := range n {
		for t := l.Prefix; t < l.Tokens; t++ {
			var e float64
			for d, v := range train[(s*l.Tokens+t)*D:][:D] {
				e += (float64(v) - mean[d]) * (float64(v) - mean[d])
			}
			dist = append(dist, e)
		}
	}
	med := append([]float64(nil), dist...)
	sort.Float64s(med)
	thr := ntcOutlierFactor * med[len(med)/2]
	keep := 0
	clear(mean)
	for s := range n {
		for t := l.Prefix; t < l.Tokens; t++ {
			if thr > 0 && dist[s*grid+t-l.Prefix] > thr {
				continue
			}
			for d, v := range train[(s*l.Tokens+t)*D:][:D] {
				mean[d] += float64(v)
			}
			keep++
		}
	}
	if thr > 0 && thr < math.MaxFloat32 {
		c.othr = float32(thr)
	}
	for d := range mean {
		mean[d] /= float64(max(keep, 1))
		c.mean[d] = f16.Round(float32(mean[d]))
	}
	x := mat.NewDense(max(keep, 1), D, nil)
	raw := x.RawMatrix()
	i := 0
	for s := range n {
		for t := l.Prefix; t < l.Tokens; t++ {
			if thr > 0 && dist[s*grid+t-l.Prefix] > thr {
				continue
			}
			row := raw.Data[i*raw.Stride:][:D]
			for d, v := range train[(s*l.Tokens+t)*D:][:D] {
				row[d] = float64(v) - mean[d]
			}
			i++
		}
	}
	rows = max(keep, 1)
	var cov mat.SymDense
	cov.SymOuterK(1/float64(rows), x.T())
	var unwhiten *mat.Dense
	if c.task != nil {
		s, inv, ok := whitening(c.task.blended())
		if ok {
			var t, w mat.Dense
			t.Mul(s, &cov)
			w.Mul(&t, s)
			for i := range D {
				for j := i; j < D; j++ {
					cov.SetSym(i, j, (w.At(i, j)+w.At(j, i))/2)
				}
			}
			unwhiten = inv
		} else {
			c.task = nil
		}
	}
	var eig mat.EigenSym
	if !eig.Factorize(&cov, true) {
		// Fall back to the identity basis.
		c.k = D
		c.bq = make([]int8, D*D)
		c.bscale = make([]uint16, D)
		for d := range D {
			c.bq[d*D+d] = 127
			c.bscale[d] = f16.FromFloat32(1.0 / 127)
		}
		c.finish()
		return c
	}
	vals := eig.Values(nil)
	var vecs mat.Dense
	eig.VectorsTo(&vecs)
	if unwhiten != nil {
		var b mat.Dense
		b.Mul(unwhiten, &vecs)
		vecs = b
	}
	idx := make([]int, D)
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return vals[idx[a]] > vals[idx[b]] })
	c.k = D
	c.bq = make([]int8, D*D)
	c.bscale = make([]uint16, D)
	c.fit = &fitInfo{lambda: make([]float64, D), berr: make([]float64, D), b16: make([]float32, D*D)}
	brows := make([]float64, D*D)
	for k, j := range idx {
		c.fit.lambda[k] = max(0, vals[j])
		// Sign: the largest-magnitude entry is positive, for determinism.
		var big float64
		for d := range D {
			if v := vecs.At(d, j); math.Abs(v) > math.Abs(big) {
				big = v
			}
		}
		sgn := 1.0
		if big < 0 {
			sgn = -1
		}
		for d := range D {
			brows[k*D+d] = sgn * vecs.At(d, j)
		}
	}
	if unwhiten == nil && c.mver >= 9 {
		// An orthonormal basis: Householder vectors (householder.go), half
		// the bytes of int8 rows. The decoded basis is orthonormal, so its
		// rounding costs no reconstruction error with all D components
		// (berr stays 0) and no row needs float16.
		c.hh = true
		c.hbits = hhWidths(c.fit.lambda)
		c.bq, c.bscale = hhQuantize(brows, D, D, c.hbits)
		c.finish()
		return c
	}
	for k := range D {
		row := brows[k*D : (k+1)*D]
		var amax float64
		for _, v := range row {
			amax = max(amax, math.Abs(v))
		}
		// Rows are stored as int8 with a float16 scale: the basis error
		// this adds is about 40 dB below each component's energy.
		h := scaleFor(float32(amax), 127)
		c.bscale[k] = h
		inv := 1 / f16.ToFloat32(h)
		for d, v := range row {
			q := int8(roundClamp(float32(v)*inv, 127))
			c.bq[k*D+d] = q
			e := float64(float32(q)*f16.ToFloat32(h)) - v
			c.fit.berr[k] += e * e
			c.fit.b16[k*D+d] = f16.Round(float32(v))
		}
	}
	if unwhiten != nil {
		// The dual projection reconstructs through the int8 rows
		// themselves (exactly with all D components), so their rounding
		// costs no distortion and needs no float16 rows.
		clear(c.fit.berr)
	}
	c.finish()
	return c
}

// fitInfo holds what fitting knows beyond the model.
type fitInfo struct {
	lambda []float64 // eigenvalues, descending
	berr   []float64 // squared norm of each int8 basis row's error
	b16    []float32 // the basis rounded to float16
	// progress reports the rate search's probes (Options.Progress).
	progress func(phase string, done, total int)
	probes   int
}

// ratioProbes is about how many sizes a rate search tries (bracketCode,
// then the two neighbouring codes with every trellis pass).
const ratioProbes = 11

// probed reports one more probe of the rate search.
func (c *ntcCodec) probed() {
	if f := c.fit; f != nil && f.progress != nil {
		f.probes++
		f.progress(FitPhaseRate, f.probes, max(ratioProbes, f.probes))
	}
}

// setHi16 stores the first h basis rows as float16.
func (c *ntcCodec) setHi16(h int) {
	c.hi16 = h
	c.basis = append([]float32(nil), c.fit.b16[:h*c.dim]...)
	c.finish()
}

// chooseHi16 returns how many leading basis rows need float16 storage at
// step code: the fewest for which the int8 rows' error energy stays below
// 2% of the expected quantization noise.
func (c *ntcCodec) chooseHi16(code int32) int {
	if c.fit == nil {
		return 0
	}
	step := float64(stepOf(code))
	var noise float64
	for i, sc := range c.sig {
		if sc == 0 {
			continue
		}
		sig := math.Exp2((float64(sc) - 128) / 8)
		w := 1.0 / blockSize // an AC class: one coefficient per block
		if i%ntcClasses >= blockSize {
			w /= blockSize // a DC class: one block in 16
		}
		noise += min(sig*sig, step*step/12) * w
	}
	var berr float64
	for k := range c.k {
		berr += c.fit.lambda[k] * c.fit.berr[k]
	}
	h := 0
	for h < c.k && berr > 0.02*noise {
		berr -= c.fit.lambda[h] * c.fit.berr[h]
		h++
	}
	return h
}

// classEnergy returns the mean square of every class and component of
// the coefficients of cs (K x ntcClasses, sum[k*ntcClasses+cl]; 0 where a
// class has no coefficient) and the number of coefficients per class.
func (c *ntcCodec) classEnergy(cs *coefSet) ([]float64, []float64) {
	K := c.k
	sum := make([]float64, K*ntcClasses)
	cnt := make([]float64, ntcClasses)
	for s := range cs.n {
		for bi := range cs.blocks {
			g := &c.blocks[bi]
			coef := cs.block(s, bi)
			for fy := range int(g.bh) {
				for fx := range int(g.bw) {
					u := fy*blockSide + fx
					cl := g.class(u)
					cnt[cl]++
					for k, v := range coef[u*K : u*K+K] {
						sum[k*ntcClasses+cl] += float64(v) * float64(v)
					}
				}
			}
		}
	}
	for k := range K {
		for cl := range ntcClasses {
			if cnt[cl] > 0 {
				sum[k*ntcClasses+cl] /= cnt[cl]
			}
		}
	}
	return sum, cnt
}

// fitSigma sets the sigma codes from the training coefficients.
func (c *ntcCodec) fitSigma(cs *coefSet) {
	K := c.k
	ms, cnt := c.classEnergy(cs)
	c.sig = make([]uint8, K*ntcClasses)
	for k := range K {
		for cl := range ntcClasses {
			if cnt[cl] == 0 || ms[k*ntcClasses+cl] == 0 {
				continue
			}
			v := math.Sqrt(ms[k*ntcClasses+cl])
			c.sig[k*ntcClasses+cl] = uint8(max(0, min(255, math.Round(8*math.Log2(v))+128)))
		}
	}
}

// componentsFor returns the number of components that step code uses.
func (c *ntcCodec) componentsFor(code int32) int {
	k := 0
	for _, e := range c.plan(code) {
		k = max(k, int(e.k)+1)
	}
	return k
}

// truncate returns a codec with the first k components of c.
func (c *ntcCodec) truncate(k int) *ntcCodec {
	t := &ntcCodec{
		layout: c.layout, dim: c.dim, k: k,
		mean:     c.mean,
		hi16:     min(c.hi16, k),
		basis:    c.basis[:min(c.hi16, k)*c.dim],
		bq:       c.bq[:k*c.dim],
		bscale:   c.bscale[:k],
		stepCode: c.stepCode, qkind: c.qkind, qtarget: c.qtarget, lambda: c.lambda, othr: c.othr,
		mver: c.mver, hh: c.hh, hbits: c.hbits[:min(k, len(c.hbits))], pmean: c.pmean, atabs: c.atabs, tlo: c.tlo, thi: c.thi,
		fit: c.fit, task: c.task, blocks: c.blocks, groups: c.groups,
	}
	if c.csc != nil {
		t.setClassSteps(c.csc[:k*ntcClasses])
	}
	if c.sig != nil {
		t.sig = c.sig[:k*ntcClasses]
		t.model = t.serialize()
	}
	t.finish()
	return t
}

// chunkSyms holds the quantized symbols of the training data, chunk by
// chunk, at one step code, and the frequency tables they are coded with.
type chunkSyms struct {
	code int32
	pl   []planEntry
	sym  [][]int32
	cent [ntcBuckets][2][3]int8 // centroid offsets
	tabs [ntcBuckets][2]ansTable
	tlo  uint8
	thi  uint8
}

// setTables makes q's tables the codec's.
func (c *ntcCodec) setTables(q *chunkSyms) {
	c.atabs, c.tlo, c.thi = q.tabs, q.tlo, q.thi
	c.cent = [ntcBuckets][2][3]int8{}
	copy(c.cent[q.tlo:q.thi], q.cent[q.tlo:q.thi])
	c.finish()
}

// ntcFitPasses is the number of trellis passes of the fit at a step code:
// the first quantizes with the rate estimates of the Laplacian prior
// tables, and each next one with those of the tables fitted to the
// previous one's symbols; the last pass's symbols are coded with the
// tables they were quantized with, as Encode codes them.
var ntcFitPasses = 3

// quantizeChunks quantizes the training coefficients in chunks of chunk
// samples at step code with the trellis (on GOMAXPROCS goroutines) and
// fits the frequency tables (ntcFitPasses).
func (c *ntcCodec) quantizeChunks(cs *coefSet, n, chunk int, code int32, passes int) *chunkSyms {
	pl := c.plan(code)
	idx := c.shapeIndex(pl)
	prior := priorANSTables(c.plainFrom())
	tabs, tlo, thi := prior, uint8(0), uint8(0)
	var r *chunkSyms
	for pass := range passes {
		cost := ansCostOf(&tabs)
		r = &chunkSyms{code: code, pl: pl, tabs: tabs, tlo: tlo, thi: thi}
		var hist [ntcBuckets][2][ansSyms]float64
		var cent dqCentroids
		for s := 0; s < n; s += chunk {
			m := min(chunk, n-s)
			per := cs.blocks * blockSize * cs.stride
			sub := &coefSet{stride: cs.stride, blocks: cs.blocks, n: m, coef: cs.coef[s*per : (s+m)*per]}
			sym, ct := c.quantizeOn(sub, pl, code, cost, runtime.GOMAXPROCS(0))
			c.histogram(&hist, pl, sym, idx, m)
			r.sym = append(r.sym, sym)
			cent.add(ct)
		}
		r.cent = cent.offsets()
		if pass < passes-1 {
			tabs, tlo, thi = fitANSTables(&hist, c.plainFrom())
		}
	}
	return r
}

// fitRatio returns the quantized training data, tables and step code
// whose model plus payloads, the training data encoded in chunks, come
// closest to fp16 size / ratio (the trellis' rate weight set to close
// the gap the step code leaves).
//
// Each size is a full trellis quantization, so the search runs on a
// subsample of the training samples (every stride-th; its payload scaled
// up), aimed at the target divided by how much the subsample
// misestimates the whole at the point found so far; the sizes of the
// whole are measured at that point, and again when the estimate was more
// than 0.2% off.
func (c *ntcCodec) fitRatio(train []float32, n int, cs *coefSet, chunk int, ratio float64, total int) *chunkSyms {
	// The file holds total samples: its payload is the training samples'
	// payload scaled up, and its model is stored once.
	target := float64(2*total*c.layout.Values()) / ratio
	v := c.layout.Values()
	sizer := func(train []float32, n int, cs *coefSet, chunk int) func(code int32, passes int) (float64, *chunkSyms) {
		spread := float64(total) / float64(n)
		return func(code int32, passes int) (float64, *chunkSyms) {
			defer c.probed()
			q := c.quantizeChunks(cs, n, chunk, code, passes)
			k := c.componentsFor(code)
			model := modelSize(c.dim, k, c.basisBytes(k), len(c.pmean), tableBytes(c.mver, int(q.tlo), int(q.thi))) + classStepBytes(c.csc != nil, k)
			payload := 0
			var buf []byte
			enc := encTablesOf(&q.tabs)
			for i, sym := range q.sym {
				s := i * chunk
				m := min(chunk, n-s)
				buf = c.appendPayload(buf[:0], train[s*v:(s+m)*v], m, q.pl, sym, code, enc)
				payload += len(buf)
			}
			return float64(model) + spread*float64(payload), q
		}
	}
	full := &sizeMemo{c: c, f: sizer(train, n, cs, chunk)}
	sub := full
	if stride := n / ntcFitSubsample; stride > 1 {
		var st []float32
		scs := &coefSet{stride: cs.stride, blocks: cs.blocks}
		per := cs.blocks * blockSize * cs.stride
		for s := 0; s < n; s += stride {
			st = append(st, train[s*v:(s+1)*v]...)
			scs.coef = append(scs.coef, cs.coef[s*per:(s+1)*per]...)
			scs.n++
		}
		sub = &sizeMemo{c: c, f: sizer(st, scs.n, scs, max(1, chunk/stride))}
	}
	passes := ntcFitPasses
	// search returns the step code and rate weight whose subsample size
	// comes closest to goal.
	search := func(goal float64, lo, hi int32) (int32, uint8) {
		// The root finding runs with fewer trellis passes (its sizes are
		// within a percent).
		p := min(2, passes)
		lo, hi = bracketCode(func(code int32) float64 { return sub.size(code, p) }, goal, lo, hi)
		if lo == hi {
			return lo, c.lambda
		}
		// Size the neighbours with every pass, the one the fewer passes
		// put nearer goal last (memo keeps its symbols).
		var slo, shi float64
		if math.Abs(sub.size(lo, p)-goal) < math.Abs(sub.size(hi, p)-goal) {
			shi = sub.size(hi, passes)
			slo = sub.size(lo, passes)
		} else {
			slo = sub.size(lo, passes)
			shi = sub.size(hi, passes)
		}
		best, sbest, bestLambda := hi, shi, c.lambda
		if math.Abs(slo-goal) < math.Abs(shi-goal) {
			best, sbest = lo, slo
		}
		// Classes enter the plan in groups (sigma codes are 1/8 octave),
		// so the size can jump between neighbouring step codes; the rate
		// weight closes the gap when it is wider than 0.2%. The size
		// falls as the weight grows: search it (bracketCode) at the nearer
		// code first, and at the other when that leaves the gap wider
		// than 0.2%.
		if math.Abs(sbest/goal-1) > 0.002 {
			l0 := int(c.lambda)
			order := []int32{best, lo + hi - best}
			for _, code := range order {
				if math.Abs(sbest/goal-1) <= 0.002 {
					break
				}
				size := func(l int32) float64 {
					c.lambda = uint8(l)
					s := sub.size(code, passes)
					if math.Abs(s-goal) < math.Abs(sbest-goal) {
						best, sbest, bestLambda = code, s, c.lambda
					}
					return s
				}
				bracketCode(size, goal, int32(max(1, l0*2/3)), int32(min(255, l0*3/2)))
			}
			c.lambda = uint8(l0)
		}
		return best, bestLambda
	}
	lambda0 := c.lambda
	code, lambda := search(target, -16*256, 16*256)
	var q *chunkSyms
	for try := range 3 {
		c.lambda = lambda
		var s float64
		s, q = full.syms(code, passes)
		if math.Abs(s/target-1) <= 0.002 || try == 2 {
			break
		}
		// Aim the subsample at what the whole needs, near the point.
		ss := sub.size(code, passes)
		c.lambda = lambda0
		code, lambda = search(target*ss/s, code-64, code+64)
	}
	return q
}

// sizeMemo memoizes a rate search's sizes by (step code, rate weight,
// passes): the search comes back to points it has sized. It also keeps
// the symbols of the last probe that ran every trellis pass, until the
// next quantization starts (each is the quantized training data, so no
// more): when the subsample is the whole, the final sizing of the whole
// is usually that probe.
type sizeMemo struct {
	c     *ntcCodec
	f     func(code int32, passes int) (float64, *chunkSyms)
	seen  map[sizeKey]float64
	lastK sizeKey
	lastQ *chunkSyms
}

type sizeKey struct {
	code   int32
	lambda uint8
	passes int
}

// size returns the size at code with passes trellis passes, at the
// codec's rate weight.
func (m *sizeMemo) size(code int32, passes int) float64 {
	if s, ok := m.seen[sizeKey{code, m.c.lambda, passes}]; ok {
		return s
	}
	s, _ := m.syms(code, passes)
	return s
}

// syms returns the size and the quantized symbols at code with passes
// trellis passes, quantizing again unless they are the last probe's.
func (m *sizeMemo) syms(code int32, passes int) (float64, *chunkSyms) {
	k := sizeKey{code, m.c.lambda, passes}
	if m.lastQ != nil && k == m.lastK {
		return m.seen[k], m.lastQ
	}
	m.lastQ = nil // before the next quantization: one at a time
	s, q := m.f(code, passes)
	if m.seen == nil {
		m.seen = map[sizeKey]float64{}
	}
	m.seen[k] = s
	if passes >= ntcFitPasses {
		m.lastK, m.lastQ = k, q
	}
	return s, q
}

// bracketCode returns neighbouring step codes a, b = a+1 in [lo, hi] with
// size(a) > goal >= size(b), for a positive size that falls as the code
// grows; or lo, lo when size(lo) <= goal, and hi, hi when size(hi) >
// goal. Each size is a trellis quantization, so it asks for few. It works
// on ln(size/goal), which a rate of about a bit per coded value per octave
// (256 codes) keeps near linear: from the middle of [lo, hi] it steps
// towards goal, an octave, then as far as the last two sizes predict (a
// tenth beyond, 8 codes to four octaves), until goal is bracketed; then
// it interpolates (regula falsi), sizing the code below the predicted
// crossing and, when that one is still too large, the code after it,
// which closes the bracket when the prediction holds; the Illinois rule
// keeps an end that stays from stalling it. Once two steps running keep
// more than half of the bracket it bisects to the end (the size jumps
// where classes enter the plan, and is flat between). Bisecting the
// fit's 32 octaves took 15 sizes; this takes about 5-8 near the middle.
func bracketCode(size func(int32) float64, goal float64, lo, hi int32) (int32, int32) {
	if lo >= hi {
		return lo, lo
	}
	g := func(x int32) float64 { return math.Log(size(x) / goal) }
	var a, b int32     // g(a) > 0 >= g(b), once both are known
	var fa, fb float64 // g there
	haveA, haveB := false, false
	x := lo + (hi-lo)/2
	var px int32
	var pf float64
	for prev := false; ; prev = true {
		f := g(x)
		if f > 0 {
			a, fa, haveA = x, f, true
			if x == hi {
				return hi, hi
			}
		} else {
			b, fb, haveB = x, f, true
			if x == lo {
				return lo, lo
			}
		}
		if haveA && haveB {
			break
		}
		step := int32(256)
		if prev && pf != f {
			d := 1.1 * math.Abs(f*float64(x-px)/(f-pf))
			step = int32(min(4*256, max(8, d)))
		}
		px, pf = x, f
		if f > 0 {
			x = min(hi, x+step)
		} else {
			x = max(lo, x-step)
		}
	}
	// set records g(x) = f on its side of the crossing; when the same
	// side moves twice running, the other end's value is halved (the
	// Illinois rule), so that the interpolation does not creep.
	side := 0
	set := func(x int32, f float64) {
		if f > 0 {
			a, fa = x, f
			if side > 0 {
				fb /= 2
			}
			side = 1
		} else {
			b, fb = x, f
			if side < 0 {
				fa /= 2
			}
			side = -1
		}
	}
	for slow := 0; b-a > 1; {
		w := b - a
		if slow >= 2 || fa == fb {
			m := a + w/2
			set(m, g(m))
			continue
		}
		r := float64(a) + float64(w)*fa/(fa-fb)
		x := min(b-1, max(a+1, int32(math.Floor(r))))
		f := g(x)
		set(x, f)
		if f > 0 && x+1 < b {
			set(x+1, g(x+1))
		}
		if b-a > w/2 {
			slow++
		} else {
			slow = 0
		}
	}
	return a, b
}

// ntcFitSubsample is about how many training samples the fit's rate
// search quantizes.
const ntcFitSubsample = 48

// fitQuality returns the step code that meets the quality target on a
// subsample of at most 48 training samples taken at a regular stride.
func (c *ntcCodec) fitQuality(train []float32, n int, cs *coefSet) int32 {
	stride := (n + 47) / 48
	if stride == 1 {
		return c.searchQuality(train, n, cs)
	}
	v := c.layout.Values()
	var sub []float32
	m := 0
	for s := 0; s < n; s += stride {
		sub = append(sub, train[s*v:(s+1)*v]...)
		m++
	}
	return c.searchQuality(sub, m, c.transform(c.fillOutliers(sub, m, c.outliers(sub, m)), m))
}

// prefixMeans returns the mean of each prefix token over n samples,
// rounded to float16 (Prefix x D): the prefix rows code the tokens minus
// these. A CLS token carries the large channels of its layer at nearly
// the same value in every sample (DeiT-Tiny's block 10: up to 27 against
// a spread of about 1), which an int8 row scaled by the token's largest
// value would quantize coarsely (34 dB on the dev file's CLS tokens); the
// difference from the mean codes at 45 dB in the same bytes.
func prefixMeans(l Layout, train []float32, n int) []float32 {
	D := l.Dim
	out := make([]float32, l.Prefix*D)
	if n == 0 {
		return out
	}
	sum := make([]float64, D)
	for t := range l.Prefix {
		clear(sum)
		for s := range n {
			for d, v := range train[(s*l.Tokens+t)*D:][:D] {
				sum[d] += float64(v)
			}
		}
		for d := range sum {
			out[t*D+d] = f16.Round(float32(sum[d] / float64(n)))
		}
	}
	return out
}

// fieldBatch is how many gradient fields classSteps transforms at a time.
const fieldBatch = 64

// fieldWeights returns, for the metric's gradient fields, the mean over
// fields and positions of class cl of the squared coefficient (cl, k) of
// the field projected on the synthesis rows (w[k*ntcClasses+cl], as
// classEnergy lays it out), the number of coefficients per class and
// field, and the mean squared norm of a field. The coefficients of a field
// g are those of an error whose first-order cost is (g . e)^2.
func (c *ntcCodec) fieldWeights(tm *TaskMetric) ([]float64, []float64, float64, error) {
	l := c.layout
	K, D := c.k, c.dim
	// A codec with a zero mean whose forward projection is the rows
	// themselves.
	pc := &ntcCodec{layout: l, dim: D, k: K, mean: make([]float32, D), blocks: c.blocks, groups: c.groups}
	pc.fwdOnce.Do(func() {
		pc.fwd = make([]float32, D*K)
		for k := range K {
			for d := range D {
				pc.fwd[d*K+k] = c.basis[k*D+d]
			}
		}
	})
	tg := tm.ftok
	w := make([]float64, K*ntcClasses)
	var cnt []float64
	var tr float64
	src := make([]float32, min(fieldBatch, tm.nf)*l.Tokens*D)
	err := eachFields(tm.fields, D, fieldBatch, func(_ int, g []float32) error {
		nb := len(g) / (tg * D)
		for f := range nb {
			gf := g[f*tg*D:][:tg*D]
			copy(src[f*l.Tokens*D+l.Prefix*D:], gf)
			for _, v := range gf {
				tr += float64(v) * float64(v)
			}
		}
		bw, bc := c.classEnergy(pc.transform(src[:nb*l.Tokens*D], nb))
		for i, v := range bw {
			w[i] += v * float64(nb) / float64(tm.nf)
		}
		cnt = bc
		for i := range cnt {
			cnt[i] /= float64(nb)
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, err
	}
	return w, cnt, tr / float64(tm.nf), nil
}

// classSteps returns the class step codes (K x ntcClasses,
// component-major) of a fit in a metric with gradient fields. The weight
// of coefficient (k, cl) is the blend of its plain squared-error cost,
// |B_k|^2 for basis row B_k, and the fields' energy in it scaled as the
// metric is (D Tg w / E|g|^2, Tg grid tokens), normalised so that its
// mean over the component's coefficients is 1. Reverse water-filling in
// that weight gives the coefficient a step proportional to weight^-1/2,
// coded in 1/8 octave within 2^+-4.
func (c *ntcCodec) classSteps(tm *TaskMetric) ([]int8, error) {
	w, cnt, tr, err := c.fieldWeights(tm)
	if err != nil {
		return nil, err
	}
	K, D := c.k, c.dim
	b := tm.Blend
	tg := float64(c.layout.GridH * c.layout.GridW)
	csc := make([]int8, K*ntcClasses)
	W := make([]float64, ntcClasses)
	for k := range K {
		var bn float64
		for _, v := range c.basis[k*D : (k+1)*D] {
			bn += float64(v) * float64(v)
		}
		var tot, nc float64
		for cl := range ntcClasses {
			W[cl] = (1-b)*bn + b*float64(D)*tg*w[k*ntcClasses+cl]/tr
			tot += cnt[cl] * W[cl]
			nc += cnt[cl]
		}
		for cl := 1; cl < ntcClasses; cl++ {
			if cnt[cl] == 0 || !(W[cl] > 0) || !(tot > 0) {
				continue
			}
			o := -0.5 * math.Log2(W[cl]*nc/tot)
			csc[k*ntcClasses+cl] = int8(math.Max(-ntcClassStepMax, math.Min(ntcClassStepMax, math.Round(8*o))))
		}
	}
	return csc, nil
}
