package codec

import (
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/metrics"
)

// prefixRows returns the prefix tokens of n samples of src.
func prefixRows(l Layout, src []float32, n int) []float32 {
	var out []float32
	for s := range n {
		out = append(out, src[s*l.Tokens*l.Dim:][:l.Prefix*l.Dim]...)
	}
	return out
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
	if c.mver != ntcModelVersion || len(c.pmean) != deitLayout.Prefix*deitLayout.Dim {
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
	// The SNR of the decoded prefix tokens and the payload's size.
	snr := func(c *ntcCodec) (float64, int) {
		ps := encodeChunks(t, c, data, n, n)
		got := decodeChunks(t, c, ps, n, n)
		q := metrics.Compare(prefixRows(deitLayout, data, n), prefixRows(deitLayout, got, n), deitLayout.Dim)
		return q.SNR, len(ps[0])
	}
	with, n6 := snr(lc)
	lc.pmean = nil
	without, n5 := snr(lc)
	t.Logf("CLS SNR %.1f dB with prefix means, %.1f dB without", with, without)
	if n6 != n5 {
		t.Errorf("payload of %d bytes with prefix means, %d without", n6, n5)
	}
	if with < without+6 {
		t.Errorf("CLS SNR %.1f dB with prefix means, %.1f without: want at least 6 dB more", with, without)
	}
}
