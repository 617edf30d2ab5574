package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encodeWarnings runs an encode with --json and returns its exit code, its
// stderr and the "warnings" of its JSON.
func encodeWarnings(t *testing.T, args ...string) (string, []string) {
	t.Helper()
	code, out, errs := ntc(t, append(args, "--json")...)
	var res struct {
		Warnings []string `json:"warnings"`
	}
	if err := json.Unmarshal([]byte(out), &res); code != 0 || err != nil {
		t.Fatalf("%v: exit %d, %v\n%s", args, code, err, errs)
	}
	return errs, res.Warnings
}

// TestSilentMisses checks that an encode that succeeds while missing what
// was asked says so, on stderr and in --json's "warnings": a ratio that
// misses its target by more than 2%, decoded tokens that barely resemble
// the input, a model meeting data whose statistics differ from its fit
// data; and that a plain encode, or a model on its own data, says nothing.
func TestSilentMisses(t *testing.T) {
	dir, in := writeSample(t)
	out := func(name string) string { return filepath.Join(dir, name) }
	expect := func(t *testing.T, errs string, warns []string, want ...string) {
		t.Helper()
		for _, w := range want {
			if !strings.Contains(errs, "warning") || !strings.Contains(errs, w) || !strings.Contains(strings.Join(warns, "\n"), w) {
				t.Errorf("want a warning %q on stderr and in --json:\nstderr %s\nwarnings %q", w, errs, warns)
			}
		}
		if len(want) == 0 && (len(warns) > 0 || strings.Contains(errs, "warning")) {
			t.Errorf("unexpected warnings: %q\n%s", warns, errs)
		}
	}
	t.Run("ratio 1000", func(t *testing.T) {
		errs, warns := encodeWarnings(t, "encode", in, "-o", out("r.ntcb"), "--ratio", "1000")
		expect(t, errs, warns, "misses the target 1000x", "barely resemble")
	})
	t.Run("values below float16", func(t *testing.T) {
		tiny := writeScaled(t, in, dir, "tiny.npy", 1e-30, [3]int{}, 0)
		errs, warns := encodeWarnings(t, "encode", tiny, "-o", out("t.ntcb"), "--codec", "int8")
		expect(t, errs, warns, "barely resemble")
	})
	t.Run("plain encode", func(t *testing.T) {
		errs, warns := encodeWarnings(t, "encode", in, "-o", out("p.ntcb"))
		expect(t, errs, warns)
	})
	model := out("m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", model); code != 0 {
		t.Fatal(errs)
	}
	t.Run("model on its own data", func(t *testing.T) {
		errs, warns := encodeWarnings(t, "encode", in, "-o", out("own.ntcb"), "--model", model)
		expect(t, errs, warns)
	})
	t.Run("model on other data", func(t *testing.T) {
		twice := writeScaled(t, in, dir, "twice.npy", 2, [3]int{}, 0)
		errs, warns := encodeWarnings(t, "encode", twice, "-o", out("x2.ntcb"), "--model", model)
		expect(t, errs, warns, "statistics differ", "misses the target 8x")
	})
	// The case, on the real tokens when they are here: a block-10
	// model meets final-layer tokens.
	b10, final := "../../../shared/data/tokens/deit_tiny_block10_dev.npy", "../../../shared/data/tokens/deit_tiny_final_dev.npy"
	if _, err := os.Stat(final); err != nil {
		t.Skip("no real tokens in ../shared")
	}
	t.Run("block-10 model on final-layer tokens", func(t *testing.T) {
		m := out("b10.ntcm")
		if code, _, errs := ntc(t, "fit", b10, "-o", m, "--fit-samples", "48"); code != 0 {
			t.Fatal(errs)
		}
		errs, warns := encodeWarnings(t, "encode", final, "-o", out("final.ntcb"), "--model", m)
		expect(t, errs, warns, "statistics differ", "misses the target 8x")
		errs, warns = encodeWarnings(t, "encode", b10, "-o", out("b10.ntcb"), "--model", m)
		expect(t, errs, warns)
	})
}
