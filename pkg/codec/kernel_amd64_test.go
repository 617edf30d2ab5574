//go:build !purego

package codec

import (
	"bytes"
	"os"
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

// TestGatherMode checks NTC_GATHER's values and that the probe and
// TableReads agree with the mode in force.
func TestGatherMode(t *testing.T) {
	for v, want := range map[string]int{"hw": gatherHW, "emu": gatherEmu, "": gatherAuto, "fast": gatherAuto} {
		if got := gatherModeFromEnv(v); got != want {
			t.Errorf("%s=%q: mode %d, want %d", GatherEnv, v, got, want)
		}
	}
	if m := probeGather(); m != gatherHW && m != gatherEmu {
		t.Fatalf("probe returned mode %d", m)
	}
	if !hasAVX2() {
		return
	}
	for m, want := range map[int]string{gatherHW: "gathers", gatherEmu: "scalar loads"} {
		prev := setGatherMode(m)
		got := TableReads()
		setGatherMode(prev)
		if os.Getenv(GatherEnv) == "" && got != want {
			t.Errorf("mode %d: TableReads %q, want %q", m, got, want)
		}
	}
}
