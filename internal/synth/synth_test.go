package synth

import (
	"math"
	"slices"
	"testing"
)

// channelAbs returns the sum of |x| per channel.
func channelAbs(v []float32, d int) []float64 {
	abs := make([]float64, d)
	for i, x := range v {
		abs[i%d] += math.Abs(float64(x))
	}
	return abs
}

// TestShowsRealTokenTraits checks the traits the generator promises:
// determinism, massive channels, high-norm outliers, spatial correlation.
func TestShowsRealTokenTraits(t *testing.T) {
	c := Config{Prefix: 1, GridH: 8, GridW: 8, Dim: 64, Rank: 16, Massive: 2, Outliers: 2, Spatial: 0.8, Seed: 3}
	g := New(c)
	a := make([]float32, g.Tokens()*g.Dim())
	g.Sample(a)
	b := make([]float32, len(a))
	New(c).Sample(b)
	if !slices.Equal(a, b) {
		t.Fatal("not deterministic")
	}
	chans := channelAbs(a, 64)
	sorted := slices.Clone(chans)
	slices.Sort(sorted)
	if sorted[63] < 5*sorted[32] || sorted[62] < 5*sorted[32] {
		t.Errorf("no massive channels: top %v, median %v", sorted[62:], sorted[32])
	}
	// Outlier tokens: the largest deviation from the mean token norm.
	dev := func(tk int) float64 {
		var s float64
		for i := range 64 {
			x := float64(a[tk*64+i] - g.mean[i])
			s += x * x
		}
		return math.Sqrt(s)
	}
	var devs []float64
	for tk := 1; tk < g.Tokens(); tk++ {
		devs = append(devs, dev(tk))
	}
	slices.Sort(devs)
	if devs[len(devs)-1] < 4*devs[len(devs)/2] {
		t.Errorf("no outlier tokens: max %v median %v", devs[len(devs)-1], devs[len(devs)/2])
	}
	// Spatial correlation: neighbours closer than random pairs (on a
	// sample without outlier tokens, which would dominate the distances).
	c.Outliers = 0
	New(c).Sample(a)
	dist := func(p, q int) float64 {
		var s float64
		for i := range 64 {
			x := float64(a[p*64+i] - a[q*64+i])
			s += x * x
		}
		return s
	}
	var near, far float64
	for y := range 8 {
		for x := range 7 {
			tk := 1 + y*8 + x
			near += dist(tk, tk+1)
			far += dist(tk, 1+((y+4)%8)*8+(x+3)%8)
		}
	}
	if near > 0.8*far {
		t.Errorf("no spatial correlation: neighbours %v, far pairs %v", near, far)
	}
}
