package metrics

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestTaskSNR(t *testing.T) {
	const dim, tokens = 7, 600
	r := rand.New(rand.NewPCG(1, 2))
	x := make([]float32, tokens*dim)
	y := make([]float32, len(x))
	for i := range x {
		x[i] = float32(r.NormFloat64()*float64(1+i%dim) + 3)
		y[i] = x[i] + float32(0.1*r.NormFloat64())
	}
	eye := make([]float64, dim*dim)
	for d := range dim {
		eye[d*dim+d] = 1
	}
	// M = I is the plain SNR; M and 5M agree; halves merge.
	ts, err := NewTaskSNR(eye, dim)
	if err != nil {
		t.Fatal(err)
	}
	ts.Add(x, y)
	if want := Compare(x, y, dim).SNR; math.Abs(ts.SNR()-want) > 1e-9 {
		t.Fatalf("identity metric: %g dB, want the SNR %g", ts.SNR(), want)
	}
	// A metric that looks at channel 2 only: the SNR of that channel.
	m := make([]float64, dim*dim)
	m[2*dim+2] = 5
	tm, err := NewTaskSNR(m, dim)
	if err != nil {
		t.Fatal(err)
	}
	a, b := tm.Clone(), tm.Clone()
	a.Add(x[:300*dim], y[:300*dim])
	b.Add(x[300*dim:], y[300*dim:])
	a.Merge(b)
	var mean, sig, noise float64
	for i := range x {
		mean += float64(x[i])
	}
	mean /= float64(len(x))
	for i := 2; i < len(x); i += dim {
		sig += (float64(x[i]) - mean) * (float64(x[i]) - mean)
		noise += float64(x[i]-y[i]) * float64(x[i]-y[i])
	}
	if want := 10 * math.Log10(sig/noise); math.Abs(a.SNR()-want) > 1e-6 {
		t.Fatalf("channel metric: %g dB, want %g", a.SNR(), want)
	}
	if !math.IsNaN(tm.Clone().SNR()) {
		t.Fatal("empty accumulator has an SNR")
	}
	if _, err := NewTaskSNR(make([]float64, 4), 2); err == nil {
		t.Fatal("zero metric accepted")
	}
}
