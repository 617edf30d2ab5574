package codec

import (
	"math"
	"testing"
)

// TestBracketCode checks the rate search's root finding against the
// definition on sizes of several shapes (smooth, linear, with jumps, flat
// runs), for goals at, between and beyond the sizes, and that it asks for
// fewer sizes than bisection would.
func TestBracketCode(t *testing.T) {
	const lo, hi = -16 * 256, 16 * 256
	shapes := map[string]func(int32) float64{
		"exp":    func(c int32) float64 { return 1e6 * math.Exp2(-float64(c)/256) },
		"linear": func(c int32) float64 { return 5e6 - 1000*float64(c) },
		// a rate that falls a bit per value per octave (256 codes) until
		// nothing is coded, in steps of 32 codes, as classes leave the plan
		"jumps": func(c int32) float64 {
			return 1e4 + 1e6*max(0, 2-float64((c-lo)/32*32+lo)/256)
		},
		"flat": func(c int32) float64 { return 1e5 + float64(max(0, 1000-c)/100*100) },
	}
	for name, size := range shapes {
		total, runs := 0, 0
		for _, c0 := range []int32{lo - 5, lo, lo + 1, -3000, -303, -1, 0, 1, 77, 300, 2999, hi - 1, hi, hi + 5} {
			for _, d := range []float64{-0.5, 0, 0.5} {
				goal := size(min(hi, max(lo, c0))) + d
				calls := 0
				count := func(c int32) float64 {
					if c < lo || c > hi {
						t.Fatalf("%s: sized code %d outside [%d, %d]", name, c, lo, hi)
					}
					calls++
					return size(c)
				}
				a, b := bracketCode(count, goal, lo, hi)
				switch {
				case a == b && a == lo:
					if size(lo) > goal {
						t.Fatalf("%s goal %g: returned lo, size %g", name, goal, size(lo))
					}
				case a == b && a == hi:
					if size(hi) <= goal {
						t.Fatalf("%s goal %g: returned hi, size %g", name, goal, size(hi))
					}
				case b != a+1 || size(a) <= goal || size(b) > goal:
					t.Fatalf("%s goal %g: returned %d (size %g), %d (size %g)", name, goal, a, size(a), b, size(b))
				}
				if calls > 20 {
					t.Errorf("%s goal %g: %d sizes", name, goal, calls)
				}
				total += calls
				runs++
			}
		}
		t.Logf("%s: %.1f sizes per search (bisection: 15)", name, float64(total)/float64(runs))
	}
}
