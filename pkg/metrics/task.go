package metrics

import (
	"errors"
	"math"

	"gonum.org/v1/gonum/mat"
)

// TaskSNR accumulates the task-weighted SNR of reconstructed tokens in a
// metric M (a symmetric positive semi-definite [D, D] matrix, such as a
// model's Fisher metric):
//
//	10 log10( sum_t (x_t - m)^T M (x_t - m) / sum_t (x_t - x^_t)^T M (x_t - x^_t) )
//
// over all tokens t, where m is the mean of all original values in every
// channel (as in SNR, so that M = I gives the SNR). It does not depend on
// M's scale. The cost is 2 D r flops per token for a metric of rank r.
// The zero value is not usable; make one with NewTaskSNR. It is not safe
// for concurrent use: Clone it per goroutine and Merge the results.
type TaskSNR struct {
	dim int
	l   *mat.Dense // D x r, M = L L^T
	ml1 float64    // 1^T M 1
	// Sums over the tokens added: x^T M x, M x (as L^T x, r values),
	// e^T M e, the values and the tokens.
	sxx, see, sum float64
	lx            []float64
	tokens        int64
	buf           []float64
}

// NewTaskSNR returns an empty accumulator for the [dim, dim] row-major
// metric m, which the caller has validated (codec.NewTaskMetric does).
// Eigenvalues below 1e-12 of the largest are dropped.
func NewTaskSNR(m []float64, dim int) (*TaskSNR, error) {
	if dim <= 0 || len(m) != dim*dim {
		return nil, errors.New("metrics: task metric is not [dim, dim]")
	}
	var eig mat.EigenSym
	if !eig.Factorize(mat.NewSymDense(dim, append([]float64(nil), m...)), true) {
		return nil, errors.New("metrics: task metric eigenvalues did not converge")
	}
	vals := eig.Values(nil)
	var u mat.Dense
	eig.VectorsTo(&u)
	top := vals[len(vals)-1]
	if !(top > 0) {
		return nil, errors.New("metrics: task metric is zero")
	}
	var keep []int
	for i, v := range vals {
		if v > 1e-12*top {
			keep = append(keep, i)
		}
	}
	l := mat.NewDense(dim, len(keep), nil)
	for j, i := range keep {
		s := math.Sqrt(vals[i])
		for d := range dim {
			l.Set(d, j, u.At(d, i)*s)
		}
	}
	t := &TaskSNR{dim: dim, l: l, lx: make([]float64, len(keep))}
	for j := range keep {
		var c float64
		for d := range dim {
			c += l.At(d, j)
		}
		t.ml1 += c * c
	}
	return t, nil
}

// Clone returns an empty accumulator for the same metric.
func (t *TaskSNR) Clone() *TaskSNR {
	return &TaskSNR{dim: t.dim, l: t.l, ml1: t.ml1, lx: make([]float64, len(t.lx))}
}

// taskBlock is the number of tokens projected at once.
const taskBlock = 256

// Add compares original tokens x with their reconstruction y (whole tokens
// of the metric's dimension). It panics if the lengths differ or are not a
// multiple of the dimension, which is a programming error.
func (t *TaskSNR) Add(x, y []float32) {
	D := t.dim
	if len(x) != len(y) || len(x)%D != 0 {
		panic("metrics: mismatched lengths")
	}
	r := len(t.lx)
	for a := 0; a < len(x); a += taskBlock * D {
		b := min(len(x), a+taskBlock*D)
		n := (b - a) / D
		if cap(t.buf) < 2*n*D {
			t.buf = make([]float64, 2*taskBlock*D)
		}
		xs := mat.NewDense(n, D, t.buf[:n*D])
		es := mat.NewDense(n, D, t.buf[n*D:2*n*D])
		for i, v := range x[a:b] {
			xs.RawMatrix().Data[i] = float64(v)
			es.RawMatrix().Data[i] = float64(v) - float64(y[a+i])
			t.sum += float64(v)
		}
		var px, pe mat.Dense
		px.Mul(xs, t.l)
		pe.Mul(es, t.l)
		for i := range n {
			for j := range r {
				v := px.At(i, j)
				t.sxx += v * v
				t.lx[j] += v
				w := pe.At(i, j)
				t.see += w * w
			}
		}
		t.tokens += int64(n)
	}
}

// Merge adds the tokens o has seen; o must be for the same metric.
func (t *TaskSNR) Merge(o *TaskSNR) {
	t.sxx += o.sxx
	t.see += o.see
	t.sum += o.sum
	t.tokens += o.tokens
	for j, v := range o.lx {
		t.lx[j] += v
	}
}

// SNR returns the task-weighted SNR in dB: +Inf for an exact
// reconstruction, NaN before any token.
func (t *TaskSNR) SNR() float64 {
	if t.tokens == 0 {
		return math.NaN()
	}
	mean := t.sum / float64(t.tokens*int64(t.dim))
	// sum (x - m1)^T M (x - m1) = sum x^T M x - 2 m 1^T M sum x + n m^2 1^T M 1,
	// with 1^T M sum x = (L^T 1) . (sum L^T x).
	var c float64
	for j, v := range t.lx {
		var l1 float64
		for d := range t.dim {
			l1 += t.l.At(d, j)
		}
		c += l1 * v
	}
	signal := t.sxx - 2*mean*c + float64(t.tokens)*mean*mean*t.ml1
	return 10 * math.Log10(signal/t.see)
}
