package codec

import (
	"fmt"
	"math"
	"os"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// gaussianBound returns the SNR in dB that a Gaussian source with the
// covariance of the tokens of data reaches at bits per value, by reverse
// water-filling over the covariance's eigenvalues. The signal energy is the
// SNR's own: sum (x - global mean)^2 over all values.
func gaussianBound(data []float32, dim int, bits []float64) []float64 {
	rows := len(data) / dim
	mean := make([]float64, dim)
	var gm float64
	for i, v := range data {
		mean[i%dim] += float64(v)
		gm += float64(v)
	}
	gm /= float64(len(data))
	for d := range mean {
		mean[d] /= float64(rows)
	}
	x := mat.NewDense(rows, dim, nil)
	var sig float64
	for i, v := range data {
		x.Set(i/dim, i%dim, float64(v)-mean[i%dim])
		sig += (float64(v) - gm) * (float64(v) - gm)
	}
	sig /= float64(rows)
	var cov mat.SymDense
	cov.SymOuterK(1/float64(rows), x.T())
	var eig mat.EigenSym
	eig.Factorize(&cov, false)
	lam := eig.Values(nil)
	out := make([]float64, len(bits))
	for i, b := range bits {
		want := b * float64(dim)
		lo, hi := 1e-12, 1e6 // water level
		for range 200 {
			th := math.Sqrt(lo * hi)
			var r float64
			for _, l := range lam {
				if l > th {
					r += 0.5 * math.Log2(l/th)
				}
			}
			if r > want {
				lo = th
			} else {
				hi = th
			}
		}
		var dist float64
		for _, l := range lam {
			dist += min(l, hi)
		}
		out[i] = 10 * math.Log10(sig/dist)
	}
	return out
}

// TestGaussianBound prints the Gaussian rate-distortion bound of both shared
// files at 4, 8 and 16x (4, 2 and 1 bits per value). NTC_REPORT=1 runs it.
func TestGaussianBound(t *testing.T) {
	if os.Getenv("NTC_REPORT") == "" {
		t.Skip("set NTC_REPORT=1 to run")
	}
	for _, f := range []string{"deit_tiny_block10_dev.npy", "deit_tiny_final_dev.npy"} {
		data, _ := loadShared(t, f)
		b := gaussianBound(data, 192, []float64{4, 2, 1})
		fmt.Printf("Gaussian bound %s: 4x %.2f dB, 8x %.2f dB, 16x %.2f dB\n", f, b[0], b[1], b[2])
	}
}
