//go:build !purego

package codec

import (
	"bytes"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
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
	defer cpufeat.SetLevel(cpufeat.SetLevel(cpufeat.Generic))
	for _, lv := range cpufeat.Levels() {
		cpufeat.SetLevel(lv)
		m2, p2 := encode()
		if !bytes.Equal(m1, m2) || !bytes.Equal(p1, p2) {
			t.Fatalf("model or payload differs between the %v kernels and those of %v", lv, cpufeat.Detected())
		}
	}
}
