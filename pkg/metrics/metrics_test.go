package metrics

import (
	"math"
	"math/rand/v2"
	"sort"
	"testing"
)

func TestExactAndKnownError(t *testing.T) {
	x := []float32{1, 2, 3, 4, 5, 6}
	s := Compare(x, x, 3)
	if !math.IsInf(s.SNR, 1) || s.NMSE != 0 || s.CosMean != 1 || s.CosP1 != 1 || s.CosMin != 1 || s.MaxAbsErr != 0 {
		t.Fatalf("exact copy: %+v", s)
	}
	y := []float32{1, 2, 3, 4, 5, 7}
	s = Compare(x, y, 3)
	// mean 3.5, signal = sum (x-3.5)^2 = 17.5, error energy 1.
	if want := 10 * math.Log10(17.5); math.Abs(s.SNR-want) > 1e-9 {
		t.Fatalf("SNR %v, want %v", s.SNR, want)
	}
	if math.Abs(s.NMSE-1/17.5) > 1e-12 || s.MaxAbsErr != 1 || s.Tokens != 2 || s.Values != 6 {
		t.Fatalf("%+v", s)
	}
}

// TestPercentileMatchesSort checks the histogram's 1st percentile against a
// sort of the exact cosines, and that Merge equals one pass.
func TestPercentileMatchesSort(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	const dim, tokens = 16, 5000
	x := make([]float32, dim*tokens)
	y := make([]float32, len(x))
	for i := range x {
		x[i] = float32(r.NormFloat64())
		y[i] = x[i] + float32(r.NormFloat64()*0.1*float64(i%7))
	}
	var cos []float64
	for t0 := 0; t0 < len(x); t0 += dim {
		var d, a, b float64
		for i := t0; i < t0+dim; i++ {
			d += float64(x[i]) * float64(y[i])
			a += float64(x[i]) * float64(x[i])
			b += float64(y[i]) * float64(y[i])
		}
		cos = append(cos, d/math.Sqrt(a*b))
	}
	sort.Float64s(cos)
	want := cos[int(math.Ceil(0.01*tokens))-1]
	var whole, part1, part2 Accumulator
	whole.Add(x, y, dim)
	half := len(x) / 2
	part1.Add(x[:half], y[:half], dim)
	part2.Add(x[half:], y[half:], dim)
	part1.Merge(&part2)
	s, m := whole.Summary(), part1.Summary()
	if rel := math.Abs((1-s.CosP1)-(1-want)) / (1 - want); rel > 0.005 {
		t.Fatalf("p1 %v, sorted %v", s.CosP1, want)
	}
	if s.CosMin != cos[0] {
		t.Fatalf("min %v, want %v", s.CosMin, cos[0])
	}
	if math.Abs(s.SNR-m.SNR) > 1e-9 || s.CosP1 != m.CosP1 || s.CosMin != m.CosMin {
		t.Fatalf("merge differs: %+v vs %+v", s, m)
	}
}

func TestZeroTokens(t *testing.T) {
	s := Compare([]float32{0, 0, 1, 1}, []float32{0, 0, 0, 0}, 2)
	if s.CosMean != 0.5 || s.CosMin != 0 {
		t.Fatalf("%+v", s)
	}
}
