//go:build !purego

package codec

import (
	"bytes"
	"testing"
)

// TestEncodeSameWithoutVectors checks that the encoder's output does not
// depend on which kernels the machine has: files are deterministic across
// CPUs.
func TestEncodeSameWithoutVectors(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 48, Prefix: 1, GridH: 8, GridW: 8}
	const n = 6
	src := synthTokens(l, n, 8)
	encode := func() ([]byte, []byte) {
		c, err := newNTC(l, src, n, Options{Ratio: 6})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Encode(nil, src, n)
		if err != nil {
			t.Fatal(err)
		}
		return c.Model(), p
	}
	m1, p1 := encode()
	old2, oldF, old5 := hasAVX2, hasFMA, has512
	hasAVX2, hasFMA, has512 = false, false, false
	m2, p2 := encode()
	hasAVX2, hasFMA, has512 = old2, oldF, old5
	if !bytes.Equal(m1, m2) || !bytes.Equal(p1, p2) {
		t.Fatal("model or payload differs between the vector and the portable kernels")
	}
}
