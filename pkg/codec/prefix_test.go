package codec

import (
	"math"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
)

// clsSNR returns the SNR (dB) of the decoded prefix tokens of n samples.
func clsSNR(l Layout, src, got []float32, n int) float64 {
	D := l.Dim
	mean := make([]float64, l.Prefix*D)
	for s := range n {
		for i := range l.Prefix * D {
			mean[i] += float64(src[s*l.Tokens*D+i]) / float64(n)
		}
	}
	var sig, noise float64
	for s := range n {
		for i := range l.Prefix * D {
			x, y := float64(src[s*l.Tokens*D+i]), float64(got[s*l.Tokens*D+i])
			sig += (x - mean[i]) * (x - mean[i])
			noise += (x - y) * (x - y)
		}
	}
	return 10 * math.Log10(sig/noise)
}

// TestPrefixMeans checks that model version 6 codes the CLS token of real
// block-10 tokens as its difference from the fitted prefix mean, far more
// precisely than the token's own int8 row (the large channels no longer
// set every channel's scale), in the same bytes, and that a model without
// prefix means (version 5) codes the rows as before.
func TestPrefixMeans(t *testing.T) {
	dir := t.TempDir()
	path, err := sample.Bench.Save(dir)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := loadNPY(t, path)
	n := sample.Bench.Samples
	cc, err := newNTC(deitLayout, data, n, Options{Ratio: 8})
	if err != nil {
		t.Fatal(err)
	}
	c := cc.(*ntcCodec)
	if c.mver != 6 || len(c.pmean) != deitLayout.Prefix*deitLayout.Dim {
		t.Fatalf("model version %d with %d prefix means", c.mver, len(c.pmean))
	}
	l, err := loadNTC(deitLayout, c.Model())
	if err != nil {
		t.Fatal(err)
	}
	lc := l.(*ntcCodec)
	for i, v := range c.pmean {
		if lc.pmean[i] != v {
			t.Fatalf("prefix mean %d: loaded %g, fitted %g", i, lc.pmean[i], v)
		}
	}
	snr := func(c *ntcCodec) (float64, int) {
		p, err := c.Encode(nil, data, n)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(data))
		if err := c.Decode(got, p, n); err != nil {
			t.Fatal(err)
		}
		return clsSNR(deitLayout, data, got, n), len(p)
	}
	with, n6 := snr(lc)
	lc.pmean, lc.mver = nil, 5
	without, n5 := snr(lc)
	t.Logf("CLS SNR %.1f dB with prefix means, %.1f dB without", with, without)
	if n6 != n5 {
		t.Errorf("payload of %d bytes with prefix means, %d without", n6, n5)
	}
	if with < without+6 {
		t.Errorf("CLS SNR %.1f dB with prefix means, %.1f without: want at least 6 dB more", with, without)
	}
}
