package codec

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"math"
	"math/big"

	"gonum.org/v1/gonum/mat"
)

// ErrMetric means a task metric is not a finite, symmetric, positive
// semi-definite [D, D] matrix, or does not fit the tokens.
var ErrMetric = errors.New("bad task metric")

// DefaultTaskBlend is the share of the task metric in the distortion the
// learned codec fits (TaskMetric.Blend): 0.7, so that every direction keeps
// at least 30% of its plain squared-error weight, even one the metric
// ignores. On DeiT-Tiny's tail the KL cut was flat from 0.5 to 0.9 at 8x
// and fell beyond 0.7 at 16x (docs/codec.md).
const DefaultTaskBlend = 0.7

// Kinds of task metric, as recorded in a file's metadata.
const (
	// MetricMatrix is a [D, D] matrix M given as it is.
	MetricMatrix = "matrix"
	// MetricLinear is M = W^T W of a linear layer W [out, D] that reads
	// the tokens.
	MetricLinear = "linear"
	// MetricFields is M = mean over fields of sum_t g_t g_t^T, from
	// gradient fields g [F, grid tokens, D] (FieldsTaskMetric).
	MetricFields = "fields"
)

// TaskMetric is the distortion measure the learned codec fits when told
// to: a token x decoded as x^ costs
//
//	(1-b) |x - x^|^2 + b D (x - x^)^T M (x - x^) / trace(M)
//
// with b = Blend. M is normalised by its trace, so any positive multiple of
// M is the same metric (bit for bit when the multiple is exact), and the
// plain squared-error share keeps every direction coded, even those M
// ignores. The fit chooses the basis, the bit allocation and the quantizer
// in that measure; decoding does not depend on it.
type TaskMetric struct {
	// Kind is MetricMatrix or MetricLinear: how the metric was given.
	Kind string
	// Blend is b, in [0, 1): 0 fits plain squared error. NewTaskMetric
	// sets DefaultTaskBlend.
	Blend float64
	// Source names where the metric came from, for error messages; it is
	// not stored in files.
	Source string

	dim  int
	norm []float64 // D M / trace(M), symmetric
	sum  [32]byte
	// fields gives nf gradient fields of ftok tokens (SetFieldSource),
	// nil for none: with them a fit also sets a step per coefficient
	// class.
	fields FieldSource
	nf     int
	ftok   int
}

// FieldSource gives a task metric its gradient fields [n, tokens, D], a
// few at a time, so that neither the metric nor a fit holds them all
// (ntcb reads them from a file this way). The fields are read three
// times, in order: for the matrix (FieldsTaskMetricFrom), for the
// metric's check and hash (SetFieldSource), and by a fit, for the class
// steps. Every read must return the same values.
type FieldSource interface {
	// FieldShape returns the number of fields and the tokens of each.
	FieldShape() (n, tokens int)
	// ReadFields reads whole fields into dst (tokens*D values each),
	// field first first.
	ReadFields(first int, dst []float32) error
}

// sliceFields is the FieldSource of fields held in memory.
type sliceFields struct {
	f             []float32
	n, tokens, dm int
}

// newSliceFields checks the shape of n fields of tokens x dim values
// against len(fields) and returns their FieldSource.
func newSliceFields(fields []float32, n, tokens, dim int) (*sliceFields, error) {
	if err := checkFieldShape(n, tokens, dim); err != nil {
		return nil, err
	}
	if len(fields) != n*tokens*dim {
		return nil, fmt.Errorf("%w: %d values for %d gradient fields of [%d, %d]", ErrMetric, len(fields), n, tokens, dim)
	}
	return &sliceFields{fields, n, tokens, dim}, nil
}

func (s *sliceFields) FieldShape() (int, int) { return s.n, s.tokens }

func (s *sliceFields) ReadFields(first int, dst []float32) error {
	copy(dst, s.f[first*s.tokens*s.dm:])
	return nil
}

// maxFieldsDim bounds the dimension of gradient fields that
// FieldsTaskMetricFrom makes a matrix of: 8192, a 512 MiB matrix, which a
// small fields file could otherwise demand whatever its size.
const maxFieldsDim = 8192

// fieldBuffer bounds the values of the fields read at a time: 2^22
// (16 MiB), at least one field.
const fieldBuffer = 1 << 22

// eachFields calls f with src's fields in order, up to batch at a time
// (fewer when that would pass fieldBuffer values, at least one): the
// index of the first and their values, which f must not keep.
func eachFields(src FieldSource, dim, batch int, f func(first int, g []float32) error) error {
	n, tokens := src.FieldShape()
	per := tokens * dim
	batch = max(1, min(batch, fieldBuffer/per, n))
	buf := make([]float32, batch*per)
	for first := 0; first < n; first += batch {
		b := buf[:min(batch, n-first)*per]
		if err := src.ReadFields(first, b); err != nil {
			return err
		}
		if err := f(first, b); err != nil {
			return err
		}
	}
	return nil
}

// NewTaskMetric validates m, a [dim, dim] row-major matrix, and returns it
// as a task metric of the given kind with the default blend. m must be
// finite, symmetric (to 1e-5 of its largest entry; the mean of m and its
// transpose is used) and positive semi-definite (no eigenvalue below -1e-6
// of the largest), with a positive trace.
func NewTaskMetric(m []float64, dim int, kind string) (*TaskMetric, error) {
	if dim <= 0 || dim > math.MaxUint16 {
		return nil, fmt.Errorf("%w: dimension %d", ErrMetric, dim)
	}
	if len(m) != dim*dim {
		return nil, fmt.Errorf("%w: %d values for a [%d, %d] matrix", ErrMetric, len(m), dim, dim)
	}
	var amax float64
	for i, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: M[%d][%d] = %g is not finite", ErrMetric, i/dim, i%dim, v)
		}
		amax = max(amax, math.Abs(v))
	}
	sym := make([]float64, dim*dim)
	for i := range dim {
		for j := range dim {
			a, b := m[i*dim+j], m[j*dim+i]
			if math.Abs(a-b) > 1e-5*amax {
				return nil, fmt.Errorf("%w: not symmetric: M[%d][%d] = %g but M[%d][%d] = %g", ErrMetric, i, j, a, j, i, b)
			}
			// The same for M and M^T.
			sym[i*dim+j] = (a + b) / 2
		}
	}
	norm, err := normalizeTrace(sym, dim)
	if err != nil {
		return nil, err
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(dim, norm), false) {
		return nil, fmt.Errorf("%w: eigenvalues did not converge", ErrMetric)
	}
	vals := eig.Values(nil)
	lo, hi := vals[0], vals[len(vals)-1]
	if lo < -1e-6*hi {
		return nil, fmt.Errorf("%w: not positive semi-definite: eigenvalue %.3g against the largest %.3g (trace-normalised)", ErrMetric, lo, hi)
	}
	t := &TaskMetric{Kind: kind, Blend: DefaultTaskBlend, dim: dim, norm: norm}
	t.hash()
	return t, nil
}

// hash sets the metric's SHA-256 of the trace-normalised matrix, with no
// fields; SetFieldSource adds them.
func (t *TaskMetric) hash() {
	t.normHash().Sum(t.sum[:0])
}

// normHash returns a SHA-256 that has taken the trace-normalised matrix
// (float64, little-endian).
func (t *TaskMetric) normHash() hash.Hash {
	h := sha256.New()
	var b [8]byte
	for _, v := range t.norm {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	return h
}

// checkFieldShape validates the shape of n gradient fields of tokens x
// dim values.
func checkFieldShape(n, tokens, dim int) error {
	if n <= 0 || tokens <= 0 || dim <= 0 || tokens > math.MaxInt32/dim || n > math.MaxInt/(tokens*dim) {
		return fmt.Errorf("%w: %d gradient fields of [%d, %d]", ErrMetric, n, tokens, dim)
	}
	return nil
}

// checkFieldValues reports the first value of fields first, first+1, ...
// (g, tokens x dim values each) that is not finite.
func checkFieldValues(g []float32, first, tokens, dim int) error {
	for i, v := range g {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: field %d, token %d, value %d is %g", ErrMetric, first+i/(tokens*dim), i/dim%tokens, i%dim, v)
		}
	}
	return nil
}

// FieldsTaskMetric returns the task metric of n gradient fields g [n,
// tokens, dim] (row-major; tokens the grid tokens of a sample, prefix
// tokens left out), each the gradient of the downstream loss with respect
// to one sample's tokens (scripts/task_metric.py fisher --fields): M =
// mean over fields of sum_t g_t g_t^T, with the fields set (SetFields).
func FieldsTaskMetric(fields []float32, n, tokens, dim int) (*TaskMetric, error) {
	src, err := newSliceFields(fields, n, tokens, dim)
	if err != nil {
		return nil, err
	}
	return FieldsTaskMetricFrom(src, dim)
}

// FieldsTaskMetricFrom is FieldsTaskMetric with the fields read from src
// (of dim values per token), a few at a time; the metric keeps src.
func FieldsTaskMetricFrom(src FieldSource, dim int) (*TaskMetric, error) {
	n, tokens := src.FieldShape()
	if err := checkFieldShape(n, tokens, dim); err != nil {
		return nil, err
	}
	if dim > maxFieldsDim {
		return nil, fmt.Errorf("%w: gradient fields of %d dims (at most %d: their matrix is D x D float64)", ErrMetric, dim, maxFieldsDim)
	}
	// M in float64, step token rows at a time (whatever the fields'
	// batches, so that M does not depend on them).
	m := mat.NewSymDense(dim, nil)
	step := max(1, (1<<22)/dim)
	rows := make([]float32, 0, min(step, n*tokens)*dim)
	rows64 := make([]float64, cap(rows))
	flush := func() {
		if len(rows) > 0 {
			r := rows64[:len(rows)]
			for i, v := range rows {
				r[i] = float64(v)
			}
			m.SymRankK(m, 1, mat.NewDense(len(rows)/dim, dim, r).T())
			rows = rows[:0]
		}
	}
	err := eachFields(src, dim, n, func(first int, g []float32) error {
		if err := checkFieldValues(g, first, tokens, dim); err != nil {
			return err
		}
		for len(g) > 0 {
			k := min(len(g), cap(rows)-len(rows))
			rows, g = append(rows, g[:k]...), g[k:]
			if len(rows) == cap(rows) {
				flush()
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	flush()
	full := make([]float64, dim*dim)
	for i := range dim {
		for j := range dim {
			full[i*dim+j] = m.At(i, j) / float64(n)
		}
	}
	t, err := NewTaskMetric(full, dim, MetricFields)
	if err != nil {
		return nil, err
	}
	return t, t.SetFieldSource(src)
}

// SetFields gives the metric n gradient fields [n, tokens, D] (as
// FieldsTaskMetric takes them; the slice is kept, not copied). A fit in a
// metric with fields also sets a step multiplier per coefficient class and
// component, from the energy of the fields' coefficients in that class
// (model version 7): the tail's sensitivity is spatially coherent, so
// errors at low spatial frequencies cost it more than the matrix alone
// says. The fields must be the grid tokens of the layout being fitted.
// The metric's SHA-256 then covers the fields.
func (t *TaskMetric) SetFields(fields []float32, n, tokens int) error {
	src, err := newSliceFields(fields, n, tokens, t.dim)
	if err != nil {
		return err
	}
	return t.SetFieldSource(src)
}

// SetFieldSource is SetFields with the fields read from src, a few at a
// time: the metric keeps src, and a fit reads it again.
func (t *TaskMetric) SetFieldSource(src FieldSource) error {
	n, tokens := src.FieldShape()
	if err := checkFieldShape(n, tokens, t.dim); err != nil {
		return err
	}
	h := t.normHash()
	var tr float64
	var b []byte
	err := eachFields(src, t.dim, n, func(first int, g []float32) error {
		if err := checkFieldValues(g, first, tokens, t.dim); err != nil {
			return err
		}
		b = b[:0]
		for _, v := range g {
			tr += float64(v) * float64(v)
			b = binary.LittleEndian.AppendUint32(b, math.Float32bits(v))
		}
		h.Write(b)
		return nil
	})
	if err != nil {
		return err
	}
	if !(tr > 0) {
		return fmt.Errorf("%w: the gradient fields are all zero", ErrMetric)
	}
	t.fields, t.nf, t.ftok = src, n, tokens
	h.Sum(t.sum[:0])
	return nil
}

// Fields returns the number of gradient fields the metric holds.
func (t *TaskMetric) Fields() int { return t.nf }

// LinearTaskMetric returns the task metric M = W^T W of a linear layer w
// [out, dim] (row-major) that reads the tokens: the squared error of its
// output.
func LinearTaskMetric(w []float64, out, dim int) (*TaskMetric, error) {
	if out <= 0 || dim <= 0 || len(w) != out*dim {
		return nil, fmt.Errorf("%w: %d values for a [%d, %d] layer", ErrMetric, len(w), out, dim)
	}
	for i, v := range w {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("%w: W[%d][%d] = %g is not finite", ErrMetric, i/dim, i%dim, v)
		}
	}
	var m mat.SymDense
	m.SymOuterK(1, mat.NewDense(out, dim, w).T())
	full := make([]float64, dim*dim)
	for i := range dim {
		for j := range dim {
			full[i*dim+j] = m.At(i, j)
		}
	}
	return NewTaskMetric(full, dim, MetricLinear)
}

// normalizeTrace returns dim m / trace(m), each entry the correctly
// rounded value of the exact quotient, so that c m gives the same result
// as m whenever c m is exact.
func normalizeTrace(m []float64, dim int) ([]float64, error) {
	tr := new(big.Rat)
	var r big.Rat
	for i := range dim {
		tr.Add(tr, r.SetFloat64(m[i*dim+i]))
	}
	if tr.Sign() <= 0 {
		return nil, fmt.Errorf("%w: trace %s is not positive", ErrMetric, tr.FloatString(6))
	}
	// The trace of float64 values is a dyadic rational, exact as a
	// big.Float of its numerator's precision; dim*v is exact in 128 bits;
	// Quo rounds the quotient correctly to 53 bits.
	trF := new(big.Float).SetRat(tr)
	dimF := new(big.Float).SetInt64(int64(dim))
	out := make([]float64, len(m))
	var x, q big.Float
	x.SetPrec(128)
	q.SetPrec(53)
	for i, v := range m {
		if v == 0 {
			continue
		}
		x.SetFloat64(v)
		x.Mul(&x, dimF)
		q.Quo(&x, trF)
		out[i], _ = q.Float64()
	}
	return out, nil
}

// Dim returns the metric's dimension D.
func (t *TaskMetric) Dim() int { return t.dim }

// SHA256 returns the SHA-256 of the trace-normalised matrix (D*D float64,
// little-endian, row-major): the same for M and any positive multiple;
// followed by the gradient fields (float32) when the metric has them.
func (t *TaskMetric) SHA256() [32]byte { return t.sum }

// Normalized returns a copy of D M / trace(M), row-major.
func (t *TaskMetric) Normalized() []float64 { return append([]float64(nil), t.norm...) }

// check validates the metric against a layout's tokens.
func (t *TaskMetric) check(l Layout) error {
	switch {
	case t.dim != l.Dim:
		return fmt.Errorf("%w %s: [%d, %d] matrix for tokens of %d dims", ErrMetric, t.Source, t.dim, t.dim, l.Dim)
	case t.fields != nil && t.ftok != l.GridH*l.GridW:
		return fmt.Errorf("%w %s: gradient fields of %d tokens for a %dx%d grid (fields hold the grid tokens only)", ErrMetric, t.Source, t.ftok, l.GridH, l.GridW)
	case !(t.Blend >= 0 && t.Blend < 1):
		return fmt.Errorf("%w: blend %g not in [0, 1)", ErrOption, t.Blend)
	}
	return nil
}

// params describes the metric for a file's metadata.
func (t *TaskMetric) params() map[string]any {
	p := map[string]any{"kind": t.Kind, "sha256": hex.EncodeToString(t.sum[:]), "blend": t.Blend}
	if t.fields != nil {
		p["fields"] = t.nf
	}
	return p
}

// blended returns the fitted distortion's matrix (1-b) I + b D M / tr(M).
func (t *TaskMetric) blended() *mat.SymDense {
	D := t.dim
	a := mat.NewSymDense(D, nil)
	for i := range D {
		for j := i; j < D; j++ {
			v := t.Blend * t.norm[i*D+j]
			if i == j {
				v += 1 - t.Blend
			}
			a.SetSym(i, j, v)
		}
	}
	return a
}

// orthoTol bounds max |B B^T - I| for basis rows B whose transpose is
// their own forward projection: a plain fit's orthonormal rows deviate by
// their int8 rounding only (about 1e-3), a task-metric fit's by far more.
const orthoTol = 0.05

// forward returns the D x K matrix that projects a centred token on the
// components. For orthonormal basis rows B (a plain fit) it is B^T; for
// other rows (a fit in a task metric) it is the transpose of their dual
// (B B^T)^-1 B, whose coefficients the decoder's B^T turns back into the
// least-squares reconstruction, exact when K = D. Fitted and loaded models
// alike take it from the basis alone, so both encode the same bytes. Made
// on first use: decoding never needs it.
func (c *ntcCodec) forward() []float32 {
	c.fwdOnce.Do(func() { c.fwd = forwardBasis(c.basis, c.k, c.dim) })
	return c.fwd
}

// forwardBasis returns the forward projection (D x K) of k basis rows of d
// values.
func forwardBasis(basis []float32, k, d int) []float32 {
	out := make([]float32, d*k)
	transpose := func() []float32 {
		for i := range k {
			for j := range d {
				out[j*k+i] = basis[i*d+j]
			}
		}
		return out
	}
	if k == 0 {
		return out
	}
	b := mat.NewDense(k, d, nil)
	for i := range k {
		for j := range d {
			b.Set(i, j, float64(basis[i*d+j]))
		}
	}
	var g mat.SymDense
	g.SymOuterK(1, b)
	var dev float64
	for i := range k {
		for j := i; j < k; j++ {
			v := g.At(i, j)
			if i == j {
				v--
			}
			dev = max(dev, math.Abs(v))
		}
	}
	if dev <= orthoTol {
		return transpose()
	}
	var ch mat.Cholesky
	if !ch.Factorize(&g) {
		return transpose() // rank-deficient rows: no dual
	}
	var dual mat.Dense
	if err := ch.SolveTo(&dual, b); err != nil {
		return transpose()
	}
	for i := range k {
		for j := range d {
			out[j*k+i] = float32(dual.At(i, j))
		}
	}
	return out
}

// whitening returns S = A^(1/2) and its inverse for a symmetric positive
// definite A.
func whitening(a *mat.SymDense) (s, inv *mat.Dense, ok bool) {
	var eig mat.EigenSym
	if !eig.Factorize(a, true) {
		return nil, nil, false
	}
	vals := eig.Values(nil)
	var u mat.Dense
	eig.VectorsTo(&u)
	n := len(vals)
	sq, isq := make([]float64, n), make([]float64, n)
	for i, v := range vals {
		if !(v > 0) {
			return nil, nil, false
		}
		sq[i], isq[i] = math.Sqrt(v), 1/math.Sqrt(v)
	}
	mk := func(w []float64) *mat.Dense {
		var t, r mat.Dense
		t.Mul(&u, mat.NewDiagDense(n, w))
		r.Mul(&t, u.T())
		return &r
	}
	return mk(sq), mk(isq), true
}
