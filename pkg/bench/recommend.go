package bench

import "math"

// Target is a quality or latency budget for Recommend. A zero field sets no
// bound.
type Target struct {
	// MinCos is the lowest acceptable mean per-token cosine.
	MinCos float64
	// MaxDecodeMs is the highest acceptable per-chunk decode latency
	// (p99), in milliseconds.
	MaxDecodeMs float64
}

// Meets reports whether the row meets every bound of t.
func (t Target) Meets(r Row) bool {
	if t.MinCos > 0 && !(r.Quality.CosMean >= t.MinCos) {
		return false
	}
	if t.MaxDecodeMs > 0 && !(r.DecodeP99ms <= t.MaxDecodeMs) {
		return false
	}
	return true
}

// Recommend returns the row with the highest file ratio that meets t,
// among the rows of real codecs (not the raw reference); equal ratios go
// to the higher mean cosine, then to the earlier row. ok is false when no
// row meets t.
func Recommend(rows []Row, t Target) (best Row, ok bool) {
	for _, r := range rows {
		if r.Codec == RawCodec || !t.Meets(r) || math.IsNaN(r.Ratio) {
			continue
		}
		if !ok || r.Ratio > best.Ratio || (r.Ratio == best.Ratio && r.Quality.CosMean > best.Quality.CosMean) {
			best, ok = r, true
		}
	}
	return best, ok
}
