package codec

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"

	"gonum.org/v1/gonum/mat"
)

// TestMixtureExperiment measures token types: a mixture of K PCA bases,
// one chosen per 4x4 block of grid tokens by k-means, against one basis,
// at equal bytes, for a model shared by many shards (its bytes counted
// once over all of them, so not per file) and, for reference, for a model
// stored in this one file. Set NTC_EXP_MIX=1,2,4,8 (the K to try);
// NTC_EXP_FILE picks the file. With NTC_EXP_MIX_HOLDOUT=1 the bases and
// the cluster centres are fitted on the first half of the samples and the
// second half is coded (blocks labelled by the nearest centre), as a
// model shared by many shards serves data it was not fitted on.
//
// Both arms run the same simplified coder, so that only the basis
// differs: per block, each token projected on its cluster's basis (all D
// components, float64), a 2-D DCT over the block, one uniform step for
// every coefficient, reconstruction at bin centres, and the rate as the
// ideal zeroth-order entropy of the symbols of each (cluster, component,
// frequency) class plus the entropy of the block labels. The step is swept
// and SNR interpolated at 4, 2 and 1 bits per grid value.
func TestMixtureExperiment(t *testing.T) {
	ks := os.Getenv("NTC_EXP_MIX")
	if ks == "" {
		t.Skip("set NTC_EXP_MIX=1,2,4,8 to run")
	}
	file := "deit_tiny_block10_dev.npy"
	if f := os.Getenv("NTC_EXP_FILE"); f != "" {
		file = f
	}
	data, n := loadShared(t, file)
	fitN := n
	if os.Getenv("NTC_EXP_MIX_HOLDOUT") != "" {
		fitN = n / 2
	}
	l := deitLayout
	blocks, _ := gridBlocks(l)
	D := l.Dim
	// Block descriptors: the mean token of each block.
	nb := n * len(blocks)
	desc := make([][]float64, nb)
	for s := range n {
		for bi, g := range blocks {
			m := make([]float64, D)
			cnt := 0
			for p := range blockSize {
				if p/blockSide >= int(g.bh) || p%blockSide >= int(g.bw) {
					continue
				}
				row := data[(s*l.Tokens+int(g.tok[p]))*D:][:D]
				for d, v := range row {
					m[d] += float64(v)
				}
				cnt++
			}
			for d := range m {
				m[d] /= float64(cnt)
			}
			desc[s*len(blocks)+bi] = m
		}
	}
	var signal, mean float64
	vals := 0
	first := 0
	if fitN < n {
		first = fitN
	}
	test := data[first*l.Values():]
	tn := n - first
	for s := range tn {
		for tk := l.Prefix; tk < l.Tokens; tk++ {
			for _, v := range test[(s*l.Tokens+tk)*D:][:D] {
				mean += float64(v)
				vals++
			}
		}
	}
	mean /= float64(vals)
	for s := range tn {
		for tk := l.Prefix; tk < l.Tokens; tk++ {
			for _, v := range test[(s*l.Tokens+tk)*D:][:D] {
				signal += (float64(v) - mean) * (float64(v) - mean)
			}
		}
	}
	t.Logf("%s: bases fitted on %d samples, coding %d; %d blocks; model bytes as ntc stores a basis: K x (D float16 mean + D rows of D int8 + scale)", file, fitN, tn, nb)
	t.Logf("| K | SNR at 4 bits/value | at 2 | at 1 | same, model in a %.1f MB file: 4 | 2 | 1 |", float64(2*vals)/1e6)
	for _, s := range strings.Split(ks, ",") {
		k, _ := strconv.Atoi(s)
		nbFit := fitN * len(blocks)
		label, cent := kmeans(desc[:nbFit], k, 25)
		bases := mixtureBases(l, blocks, data, fitN, label, k)
		tlabel := label
		if first > 0 {
			tlabel = make([]int, nb-first*len(blocks))
			for i := range tlabel {
				tlabel[i] = nearest(desc[first*len(blocks)+i], cent)
			}
		}
		curve := mixtureCurve(l, blocks, test, tn, tlabel, k, bases, signal)
		model := float64(k * (2*D + D*(2+D)))
		var amort, counted []string
		for _, bits := range []float64{4, 2, 1} {
			amort = append(amort, fmt.Sprintf("%.2f", interpSNR(curve, bits)))
			counted = append(counted, fmt.Sprintf("%.2f", interpSNR(curve, bits-8*model/float64(vals))))
		}
		t.Logf("| %d | %s | %s |", k, strings.Join(amort, " | "), strings.Join(counted, " | "))
	}
}

// rdPoint is the rate (bits per grid value) and SNR of one step.
type rdPoint struct{ bits, snr float64 }

// interpSNR interpolates the SNR at a rate from points sorted by rate.
func interpSNR(c []rdPoint, bits float64) float64 {
	for i := 1; i < len(c); i++ {
		if c[i].bits >= bits {
			a, b := c[i-1], c[i]
			return a.snr + (b.snr-a.snr)*(bits-a.bits)/(b.bits-a.bits)
		}
	}
	return math.NaN()
}

// kmeans clusters x into k groups (k-means++ seeding from a fixed seed,
// iters Lloyd steps) and returns the labels and the centres.
func kmeans(x [][]float64, k, iters int) ([]int, [][]float64) {
	label := make([]int, len(x))
	if k <= 1 {
		return label, [][]float64{x[0]}
	}
	r := rand.New(rand.NewPCG(1, 2))
	dist := func(a, b []float64) float64 {
		var s float64
		for i := range a {
			s += (a[i] - b[i]) * (a[i] - b[i])
		}
		return s
	}
	cent := [][]float64{append([]float64(nil), x[r.IntN(len(x))]...)}
	d2 := make([]float64, len(x))
	for len(cent) < k {
		var tot float64
		for i := range x {
			d2[i] = math.Inf(1)
			for _, c := range cent {
				d2[i] = math.Min(d2[i], dist(x[i], c))
			}
			tot += d2[i]
		}
		u := r.Float64() * tot
		i := 0
		for ; i < len(x)-1 && u > d2[i]; i++ {
			u -= d2[i]
		}
		cent = append(cent, append([]float64(nil), x[i]...))
	}
	for range iters {
		for i := range x {
			best := math.Inf(1)
			for j, c := range cent {
				if d := dist(x[i], c); d < best {
					best, label[i] = d, j
				}
			}
		}
		for j := range cent {
			clear(cent[j])
			cnt := 0
			for i := range x {
				if label[i] == j {
					for d, v := range x[i] {
						cent[j][d] += v
					}
					cnt++
				}
			}
			for d := range cent[j] {
				cent[j][d] /= float64(max(cnt, 1))
			}
		}
	}
	return label, cent
}

// nearest returns the index of the centre closest to x.
func nearest(x []float64, cent [][]float64) int {
	best, bi := math.Inf(1), 0
	for j, c := range cent {
		var s float64
		for i := range x {
			s += (x[i] - c[i]) * (x[i] - c[i])
		}
		if s < best {
			best, bi = s, j
		}
	}
	return bi
}

// mixBasis is one cluster's mean and PCA basis (columns).
type mixBasis struct {
	mean []float64
	v    *mat.Dense
}

// mixtureBases fits one PCA basis on the tokens of each cluster of blocks.
func mixtureBases(l Layout, blocks []blockGeom, data []float32, n int, label []int, k int) []mixBasis {
	D := l.Dim
	bases := make([]mixBasis, k)
	for j := range k {
		var rows [][]float64
		for s := range n {
			for bi, g := range blocks {
				if label[s*len(blocks)+bi] != j {
					continue
				}
				for p := range blockSize {
					if p/blockSide < int(g.bh) && p%blockSide < int(g.bw) {
						row := make([]float64, D)
						for d, v := range data[(s*l.Tokens+int(g.tok[p]))*D:][:D] {
							row[d] = float64(v)
						}
						rows = append(rows, row)
					}
				}
			}
		}
		m := make([]float64, D)
		for _, r := range rows {
			for d, v := range r {
				m[d] += v
			}
		}
		for d := range m {
			m[d] /= float64(max(1, len(rows)))
		}
		x := mat.NewDense(max(1, len(rows)), D, nil)
		for i, r := range rows {
			for d, v := range r {
				x.Set(i, d, v-m[d])
			}
		}
		var cov mat.SymDense
		cov.SymOuterK(1/float64(max(1, len(rows))), x.T())
		var eig mat.EigenSym
		eig.Factorize(&cov, true)
		var v mat.Dense
		eig.VectorsTo(&v)
		bases[j] = mixBasis{m, &v}
	}
	return bases
}

// mixtureCurve codes the grid tokens of n samples with the basis of each
// block's cluster and returns rate-distortion points over a sweep of
// steps.
func mixtureCurve(l Layout, blocks []blockGeom, data []float32, n int, label []int, k int, bases []mixBasis, signal float64) []rdPoint {
	D := l.Dim
	// Coefficients per block: [blockSize][D] after projection and DCT, and
	// the class (cluster, component, frequency) of each.
	type coefBlock struct {
		c      []float64
		j      int
		bh, bw int
	}
	var cb []coefBlock
	y := make([]float64, blockSize*D)
	for s := range n {
		for bi, g := range blocks {
			j := label[s*len(blocks)+bi]
			b := bases[j]
			bh, bw := int(g.bh), int(g.bw)
			clear(y)
			for py := range bh {
				for px := range bw {
					row := data[(s*l.Tokens+int(g.tok[py*blockSide+px]))*D:][:D]
					for kk := range D {
						var acc float64
						for d, v := range row {
							acc += (float64(v) - b.mean[d]) * b.v.At(d, kk)
						}
						y[(py*blockSide+px)*D+kk] = acc
					}
				}
			}
			c := make([]float64, blockSize*D)
			for fy := range bh {
				for fx := range bw {
					for py := range bh {
						for px := range bw {
							w := float64(dctMats[bh][fy][py]) * float64(dctMats[bw][fx][px])
							for kk := range D {
								c[(fy*blockSide+fx)*D+kk] += w * y[(py*blockSide+px)*D+kk]
							}
						}
					}
				}
			}
			cb = append(cb, coefBlock{c, j, bh, bw})
		}
	}
	values := float64(n * (l.Tokens - l.Prefix) * D)
	// Label cost: the entropy of the cluster labels.
	var labelBits float64
	counts := make([]float64, k)
	for _, j := range label {
		counts[j]++
	}
	for _, c := range counts {
		if c > 0 {
			labelBits -= c * math.Log2(c/float64(len(label)))
		}
	}
	var curve []rdPoint
	for e := -4.0; e <= 3.01; e += 0.25 {
		step := math.Exp2(e)
		hist := map[[3]int]map[int]float64{}
		var noise float64
		for _, b := range cb {
			for fy := range b.bh {
				for fx := range b.bw {
					u := fy*blockSide + fx
					for kk := range D {
						v := b.c[u*D+kk]
						q := math.Round(v / step)
						noise += (v - q*step) * (v - q*step)
						key := [3]int{b.j, kk, u}
						h := hist[key]
						if h == nil {
							h = map[int]float64{}
							hist[key] = h
						}
						h[int(q)]++
					}
				}
			}
		}
		bits := labelBits
		keys := make([][3]int, 0, len(hist))
		for key := range hist {
			keys = append(keys, key)
		}
		sort.Slice(keys, func(a, b int) bool { return fmt.Sprint(keys[a]) < fmt.Sprint(keys[b]) })
		for _, key := range keys {
			var tot float64
			for _, c := range hist[key] {
				tot += c
			}
			for _, c := range hist[key] {
				bits -= c * math.Log2(c/tot)
			}
		}
		curve = append(curve, rdPoint{bits / values, 10 * math.Log10(signal/noise)})
	}
	sort.Slice(curve, func(a, b int) bool { return curve[a].bits < curve[b].bits })
	return curve
}
