package codec

import (
	"fmt"
	"os"
	"slices"
	"testing"
)

// TestDCCorrelation measures how much the DC coefficients of neighbouring
// blocks still correlate (a second-level transform would exploit it).
func TestDCCorrelation(t *testing.T) {
	if os.Getenv("NTC_EXP") == "" {
		t.Skip("set NTC_EXP=1")
	}
	data, n := loadShared(t, "deit_tiny_block10_dev.npy")
	c := fitPCA(deitLayout, data, n, nil)
	cs := c.transform(data, n)
	K := c.k
	// Blocks are a 4x4 grid (14x14 tokens); pairs (b, b+1) in a row.
	var dcE, acE, num, den1, den2 float64
	for s := range n {
		for by := range 4 {
			for bx := range 3 {
				a := cs.block(s, by*4+bx)
				b := cs.block(s, by*4+bx+1)
				for k := range 32 {
					num += float64(a[k]) * float64(b[k])
					den1 += float64(a[k]) * float64(a[k])
					den2 += float64(b[k]) * float64(b[k])
				}
			}
		}
		for bi := range 16 {
			blk := cs.block(s, bi)
			for k := range K {
				dcE += float64(blk[k]) * float64(blk[k])
			}
			for u := 1; u < 16; u++ {
				for k := range K {
					acE += float64(blk[u*K+k]) * float64(blk[u*K+k])
				}
			}
		}
	}
	fmt.Printf("DC share of energy %.3f; DC correlation of horizontal neighbours (top 32 comps, energy-weighted) %.3f\n",
		dcE/(dcE+acE), num/((den1+den2)/2))
	// Token norms: are there high-norm outlier tokens among the patches?
	var norms []float64
	for s := range n {
		for tk := 1; tk < 197; tk++ {
			var e float64
			for _, v := range data[(s*197+tk)*192:][:192] {
				e += float64(v) * float64(v)
			}
			norms = append(norms, e)
		}
	}
	slices.Sort(norms)
	m := len(norms)
	fmt.Printf("patch token squared norms: median %.1f p99 %.1f p99.9 %.1f max %.1f\n", norms[m/2], norms[m*99/100], norms[m*999/1000], norms[m-1])
}
