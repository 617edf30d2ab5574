package bench

import "math"

// MeanPool returns the mean over tokens of one sample's tokens (all of
// them, prefix tokens included), a vector of dim values.
func MeanPool(sample []float32, dim int) []float64 {
	e := make([]float64, dim)
	n := len(sample) / dim
	for t := range n {
		for j, x := range sample[t*dim : (t+1)*dim] {
			e[j] += float64(x)
		}
	}
	if n > 0 {
		for j := range e {
			e[j] /= float64(n)
		}
	}
	return e
}

// NNAgreement measures how well reconstructed embeddings keep the nearest
// neighbours of the originals. orig[i] and recon[i] are sample i's
// embeddings. For each sample i, its original nearest neighbour is the
// j != i with the highest cosine between orig[i] and orig[j]; its
// reconstructed ranking orders the j != i by the cosine between recon[i]
// and recon[j] (queries and database both reconstructed). top1 is the
// fraction of samples whose reconstructed nearest neighbour is the original
// one; top5 the fraction whose original nearest neighbour is among the
// reconstructed five nearest. Ties go to the lower index. With fewer than
// two samples, or lists of different lengths, both are NaN.
//
// The cost is O(n^2 * dim) time and O(n * dim) memory.
func NNAgreement(orig, recon [][]float64) (top1, top5 float64) {
	n := len(orig)
	if n < 2 || len(recon) != n {
		return math.NaN(), math.NaN()
	}
	uo, ur := normalize(orig), normalize(recon)
	var hit1, hit5 int
	for i := range n {
		want := nearest(uo, i, 1)[0]
		got := nearest(ur, i, 5)
		if got[0] == want {
			hit1++
		}
		for _, j := range got {
			if j == want {
				hit5++
				break
			}
		}
	}
	return float64(hit1) / float64(n), float64(hit5) / float64(n)
}

// nearest returns the indices of the k vectors (fewer if there are not as
// many) other than i with the highest dot product with us[i], best first,
// ties to the lower index.
func nearest(us [][]float64, i, k int) []int {
	type cand struct {
		j int
		s float64
	}
	best := make([]cand, 0, k+1)
	q := us[i]
	for j, u := range us {
		if j == i {
			continue
		}
		var s float64
		for d, x := range q {
			s += x * u[d]
		}
		if len(best) == k && s <= best[k-1].s {
			continue
		}
		// Insert after every candidate scoring at least s: an earlier
		// index wins ties.
		p := len(best)
		for p > 0 && best[p-1].s < s {
			p--
		}
		best = append(best, cand{})
		copy(best[p+1:], best[p:])
		best[p] = cand{j, s}
		if len(best) > k {
			best = best[:k]
		}
	}
	out := make([]int, len(best))
	for p, c := range best {
		out[p] = c.j
	}
	return out
}

// normalize returns the vectors scaled to unit length; a zero vector stays
// zero (cosine 0 with everything).
func normalize(vs [][]float64) [][]float64 {
	out := make([][]float64, len(vs))
	for i, v := range vs {
		var s float64
		for _, x := range v {
			s += x * x
		}
		u := make([]float64, len(v))
		if s > 0 {
			inv := 1 / math.Sqrt(s)
			for j, x := range v {
				u[j] = x * inv
			}
		}
		out[i] = u
	}
	return out
}
