// Package metrics measures how well reconstructed tokens match the
// originals. The definitions, used throughout ntc's reports:
//
//   - SNR  = 10 log10( sum (x - mean)^2 / sum (x - x_hat)^2 ) in dB, over all
//     values, where mean is the mean of all original values;
//   - NMSE = sum (x - x_hat)^2 / sum (x - mean)^2, so SNR = -10 log10(NMSE);
//   - cosine similarity per token between the original and reconstructed
//     D-dim vectors, summarised by its mean, 1st percentile and minimum;
//   - the maximum absolute error over all values.
//
// An Accumulator takes samples one at a time in bounded memory, however
// many there are: cosines go into a histogram with logarithmic bins in
// 1 - cos, which resolves percentiles to 0.25% of their distance from 1.
package metrics

import (
	"encoding/json"
	"math"
)

// Summary is the figures an Accumulator reports.
type Summary struct {
	// Values is the number of values compared.
	Values int64 `json:"values"`
	// Tokens is the number of tokens (vectors) compared.
	Tokens int64 `json:"tokens"`
	// SNR is the signal-to-noise ratio in dB (+Inf when exact).
	SNR float64 `json:"snr_db"`
	// NMSE is the error energy over the signal's variance energy.
	NMSE float64 `json:"nmse"`
	// CosMean, CosP1 and CosMin summarise the per-token cosine similarity.
	CosMean float64 `json:"cos_mean"`
	CosP1   float64 `json:"cos_p1"`
	CosMin  float64 `json:"cos_min"`
	// MaxAbsErr is the largest |x - x_hat|.
	MaxAbsErr float64 `json:"max_abs_err"`
}

// Histogram layout for 1 - cos: bin 0 holds values below minGap (exact or
// nearly so), then binsPerDecade bins per decade up to 2 (cos = -1).
const (
	minGap        = 1e-12
	binsPerDecade = 1000
	decades       = 13 // 1e-12 .. 1e1
	numBins       = 1 + binsPerDecade*decades
)

// Accumulator gathers error statistics over many samples. The zero value is
// ready to use. It is not safe for concurrent use; Merge combines
// accumulators filled by separate goroutines.
type Accumulator struct {
	n, tokens            int64
	sumX, sumX2, sumErr2 float64
	cosSum               float64
	cosMin               float64
	maxAbs               float64
	hist                 []uint64
}

// Add compares original x with reconstruction y, both holding whole tokens
// of dim values each. It panics if the lengths differ or are not a multiple
// of dim, which is a programming error.
func (a *Accumulator) Add(x, y []float32, dim int) {
	if len(x) != len(y) || dim <= 0 || len(x)%dim != 0 {
		panic("metrics: mismatched lengths")
	}
	if a.hist == nil {
		a.hist = make([]uint64, numBins)
	}
	if a.tokens == 0 {
		a.cosMin = math.Inf(1)
	}
	var sx, sx2, se2, maxAbs float64
	for t := 0; t < len(x); t += dim {
		xs, ys := x[t:t+dim], y[t:t+dim]
		var dot, nx, ny float64
		for i, xv := range xs {
			xf, yf := float64(xv), float64(ys[i])
			d := xf - yf
			sx += xf
			sx2 += xf * xf
			se2 += d * d
			if ad := math.Abs(d); ad > maxAbs || math.IsNaN(d) {
				maxAbs = ad
			}
			dot += xf * yf
			nx += xf * xf
			ny += yf * yf
		}
		c := cosine(dot, nx, ny)
		a.cosSum += c
		a.cosMin = math.Min(a.cosMin, c)
		a.hist[bin(1-c)]++
	}
	a.n += int64(len(x))
	a.tokens += int64(len(x) / dim)
	a.sumX += sx
	a.sumX2 += sx2
	a.sumErr2 += se2
	if maxAbs > a.maxAbs || math.IsNaN(maxAbs) {
		a.maxAbs = maxAbs
	}
}

func cosine(dot, nx, ny float64) float64 {
	switch {
	case nx == 0 && ny == 0:
		return 1
	case nx == 0 || ny == 0:
		return 0
	}
	c := dot / math.Sqrt(nx*ny)
	return math.Max(-1, math.Min(1, c))
}

func bin(gap float64) int {
	if !(gap >= minGap) { // also catches NaN
		if math.IsNaN(gap) {
			return numBins - 1
		}
		return 0
	}
	b := 1 + int(math.Log10(gap/minGap)*binsPerDecade)
	return min(b, numBins-1)
}

// binGap returns the upper edge of bin b as a value of 1 - cos.
func binGap(b int) float64 {
	if b == 0 {
		return 0
	}
	return minGap * math.Pow(10, float64(b)/binsPerDecade)
}

// Merge adds the statistics gathered by o.
func (a *Accumulator) Merge(o *Accumulator) {
	if o.n == 0 {
		return
	}
	if a.hist == nil {
		a.hist = make([]uint64, numBins)
	}
	if a.tokens == 0 {
		a.cosMin = math.Inf(1)
	}
	a.n += o.n
	a.tokens += o.tokens
	a.sumX += o.sumX
	a.sumX2 += o.sumX2
	a.sumErr2 += o.sumErr2
	a.cosSum += o.cosSum
	a.cosMin = math.Min(a.cosMin, o.cosMin)
	a.maxAbs = math.Max(a.maxAbs, o.maxAbs)
	for i, c := range o.hist {
		a.hist[i] += c
	}
}

// Summary returns the figures gathered so far.
func (a *Accumulator) Summary() Summary {
	s := Summary{Values: a.n, Tokens: a.tokens, MaxAbsErr: a.maxAbs}
	if a.n == 0 {
		return s
	}
	mean := a.sumX / float64(a.n)
	signal := a.sumX2 - float64(a.n)*mean*mean
	s.NMSE = a.sumErr2 / signal
	s.SNR = 10 * math.Log10(signal/a.sumErr2)
	s.CosMean = a.cosSum / float64(a.tokens)
	s.CosMin = a.cosMin
	s.CosP1 = 1 - a.gapQuantile(0.99)
	return s
}

// gapQuantile returns the q-quantile of 1 - cos (the upper edge of the bin
// holding it), so 1 - gapQuantile(0.99) is the 1st percentile of cos.
func (a *Accumulator) gapQuantile(q float64) float64 {
	rank := uint64(math.Ceil(q * float64(a.tokens)))
	var seen uint64
	for b, c := range a.hist {
		seen += c
		if seen >= rank && c > 0 {
			return binGap(b)
		}
	}
	return binGap(numBins - 1)
}

// Compare returns the summary of one comparison of x with y, tokens of dim
// values each.
func Compare(x, y []float32, dim int) Summary {
	var a Accumulator
	a.Add(x, y, dim)
	return a.Summary()
}

// MarshalJSON writes the summary with non-finite figures (the SNR of an
// exact reconstruction is +Inf) as null, which JSON can carry.
func (s Summary) MarshalJSON() ([]byte, error) {
	type plain struct {
		Values    int64    `json:"values"`
		Tokens    int64    `json:"tokens"`
		SNR       *float64 `json:"snr_db"`
		NMSE      *float64 `json:"nmse"`
		CosMean   *float64 `json:"cos_mean"`
		CosP1     *float64 `json:"cos_p1"`
		CosMin    *float64 `json:"cos_min"`
		MaxAbsErr *float64 `json:"max_abs_err"`
	}
	return json.Marshal(plain{s.Values, s.Tokens, Finite(s.SNR), Finite(s.NMSE), Finite(s.CosMean),
		Finite(s.CosP1), Finite(s.CosMin), Finite(s.MaxAbsErr)})
}

// Finite returns a pointer to v, or nil when v is infinite or NaN, for JSON
// output.
func Finite(v float64) *float64 {
	if math.IsInf(v, 0) || math.IsNaN(v) {
		return nil
	}
	return &v
}
