package ntcb

import (
	"fmt"
	"math"

	"github.com/ntc-project/ntc/pkg/codec"
)

// Thresholds of the checks that Encode reports as Result.Warnings.
const (
	// targetSlack is how far (relative) the achieved ratio, or quality,
	// may miss its target before a warning.
	targetSlack = 0.02
	// poorSNR and poorCosP1 mark decoded tokens that barely resemble the
	// input, whatever the target.
	poorSNR   = 3
	poorCosP1 = 0.5
	// maxSpreadShift is the largest mean |log(std ratio)| over the
	// channels, and maxMeanShift the largest RMS shift of the channel
	// means in the model's standard deviations, of data that still
	// matches a model's fit data. Measured on DeiT-Tiny block-10 tokens:
	// two halves of the photos differ by 0.09 and 0.26; block-10 against
	// final-layer tokens by 0.66 and 0.44; the tokens times 2 by 0.69.
	maxSpreadShift = 0.3
	maxMeanShift   = 0.75
)

// DataStats summarises the values of the grid tokens (prefix tokens left
// out) per channel: what a model was fitted on, to compare the data it
// later encodes with.
type DataStats struct {
	// Tokens is the number of grid tokens counted.
	Tokens int64 `json:"tokens"`
	// Mean and Std are the per-channel mean and standard deviation.
	Mean []float32 `json:"mean"`
	Std  []float32 `json:"std"`
}

// statsAcc accumulates DataStats.
type statsAcc struct {
	n       int64
	sum, sq []float64
}

// add counts the grid tokens of n samples of layout l in vals.
func (a *statsAcc) add(vals []float32, n int, l codec.Layout) {
	if a.sum == nil {
		a.sum, a.sq = make([]float64, l.Dim), make([]float64, l.Dim)
	}
	for s := range n {
		smp := vals[s*l.Values() : (s+1)*l.Values()]
		for t := l.Prefix; t < l.Tokens; t++ {
			row := smp[t*l.Dim : (t+1)*l.Dim]
			for d, v := range row {
				a.sum[d] += float64(v)
				a.sq[d] += float64(v) * float64(v)
			}
		}
		a.n += int64(l.Tokens - l.Prefix)
	}
}

func (a *statsAcc) merge(b *statsAcc) {
	if b.sum == nil {
		return
	}
	if a.sum == nil {
		a.sum, a.sq = make([]float64, len(b.sum)), make([]float64, len(b.sq))
	}
	for d := range a.sum {
		a.sum[d] += b.sum[d]
		a.sq[d] += b.sq[d]
	}
	a.n += b.n
}

func (a *statsAcc) stats() *DataStats {
	if a.n == 0 {
		return nil
	}
	s := &DataStats{Tokens: a.n, Mean: make([]float32, len(a.sum)), Std: make([]float32, len(a.sum))}
	for d := range a.sum {
		m := a.sum[d] / float64(a.n)
		s.Mean[d] = float32(m)
		s.Std[d] = float32(math.Sqrt(max(0, a.sq[d]/float64(a.n)-m*m)))
	}
	return s
}

// differ compares data statistics with a model's: the mean |log| of the
// per-channel standard deviation ratios and the RMS shift of the channel
// means in the model's standard deviations, over the channels where both
// vary. ok is false when the two do not describe the same channels.
func (s *DataStats) differ(model *DataStats) (spread, shift float64, ok bool) {
	if model == nil || len(s.Std) != len(model.Std) || len(model.Mean) != len(model.Std) {
		return 0, 0, false
	}
	n := 0
	for d := range s.Std {
		sd, sm := float64(s.Std[d]), float64(model.Std[d])
		if sd <= 0 || sm <= 0 {
			continue
		}
		spread += math.Abs(math.Log(sd / sm))
		z := (float64(s.Mean[d]) - float64(model.Mean[d])) / sm
		shift += z * z
		n++
	}
	if n == 0 {
		return 0, 0, false
	}
	return spread / float64(n), math.Sqrt(shift / float64(n)), true
}

// target is what a file was encoded for, to check the result against.
type target struct {
	ratio   float64 // 0: none
	quality string  // "": none
	// shared is set when the ratio is that of files that hold a shared
	// model by reference (a model from Fit): the model's bytes do not
	// count.
	shared bool
	model  *DataStats // the model's fit data, when encoding with a model
	data   *DataStats // the data encoded
}

// warnings returns what a user should know about the result r that its
// success hides: a ratio or quality target missed by more than 2%,
// decoded tokens that barely resemble the input, data unlike a model's.
func (t *target) warnings(r *Result) []string {
	var w []string
	if t.ratio > 0 {
		got := r.Ratio
		if t.shared && r.FileBytes > int64(r.ModelBytes) {
			got = float64(r.FP16Bytes) / float64(r.FileBytes-int64(r.ModelBytes))
		}
		if miss := got/t.ratio - 1; math.Abs(miss) > targetSlack {
			var how string
			switch {
			case t.model != nil && miss < 0:
				how = "the data needs more bits at the model's step than the data it was fitted on"
			case t.model != nil:
				how = "the data needs fewer bits at the model's step than the data it was fitted on"
			case miss < 0:
				how = "the codec cannot make the file smaller on this data (its coarsest step, its model and the container take this much)"
			default:
				how = "the codec cannot spend more bits on this data (its finest step already gives this ratio)"
			}
			w = append(w, fmt.Sprintf("ratio %.3gx misses the target %gx by %+.0f%%: %s", got, t.ratio, 100*miss, how))
		}
	}
	q := r.Quality
	if t.quality != "" {
		metric, want, err := codec.ParseQuality(t.quality)
		switch {
		case err != nil:
		case metric == "snr" && q.SNR < want*(1-targetSlack):
			w = append(w, fmt.Sprintf("SNR %.2f dB misses the target %g dB by more than 2%%", q.SNR, want))
		case metric == "cos" && 1-q.CosMean > (1-want)*(1+targetSlack):
			w = append(w, fmt.Sprintf("mean cosine %.5f misses the target %g (1 - cos is %.0f%% above the target's)", q.CosMean, want, 100*((1-q.CosMean)/(1-want)-1)))
		}
	}
	if q.SNR < poorSNR || q.CosP1 < poorCosP1 {
		w = append(w, fmt.Sprintf("the decoded tokens barely resemble the input (SNR %.2f dB, cosine p1 %.3f): a lower ratio or a quality target may help; values far outside the float16 range cannot be held", q.SNR, q.CosP1))
	}
	if t.data != nil {
		if spread, shift, ok := t.data.differ(t.model); ok && (spread > maxSpreadShift || shift > maxMeanShift) {
			w = append(w, fmt.Sprintf("the data's statistics differ from those the model was fitted on (channel spreads off by %.0f%% on average, means shifted by %.2f standard deviations): fit a model on this data", 100*(math.Exp(spread)-1), shift))
		}
	}
	return w
}
