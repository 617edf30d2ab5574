package main

import (
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestProgressPhases checks the progress of an encode that fits the
// learned codec: a bar for each of the fit's phases, in order, then the
// encode's, with rates counted from each phase's own start (the encode's
// first rate read millions of samples per second: its clock started at
// its first update, after the fit). --progress always draws the bars when
// stderr is not a terminal.
func TestProgressPhases(t *testing.T) {
	dir, in := writeSample(t)
	code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "x.ntcb"), "--progress", "always")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	at := 0
	for _, phase := range []string{"fit: read samples", "fit: PCA", "fit: rate search", "encode"} {
		i := strings.Index(errs[at:], phase)
		if i < 0 {
			t.Fatalf("no %q after byte %d of the progress output:\n%s", phase, at, errs)
		}
		at += i
	}
	// 8 samples of 197 x 192 cannot be encoded at 10^5 samples per second
	// (7.5 GB/s of float16) by the learned codec on any CPU.
	for _, m := range regexp.MustCompile(`([0-9.]+) samples/s`).FindAllStringSubmatch(errs, -1) {
		if r, _ := strconv.ParseFloat(m[1], 64); r > 1e5 {
			t.Errorf("rate %s samples/s", m[1])
		}
	}
	code, _, errs = ntc(t, "fit", in, "-o", filepath.Join(dir, "m.ntcm"), "--progress", "always")
	if code != 0 || !strings.Contains(errs, "fit: rate search") {
		t.Fatalf("fit: exit %d, progress %q", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "y.ntcb"), "--progress", "sometimes"); code != exitUsage {
		t.Fatalf("--progress sometimes: exit %d %s", code, errs)
	}
}

// TestProgressRate checks that a bar's rate counts from its start, not
// from its first update: 10 samples 200 ms after the start read at most
// 50 samples/s (the first rate of an encode after a 16 s fit read
// 3144115 samples/s).
func TestProgressRate(t *testing.T) {
	var errb strings.Builder
	g := &globals{stderr: &errb, progress: "always"}
	p := g.newProgress(100, "encode")
	time.Sleep(200 * time.Millisecond)
	p.Add(10)
	m := regexp.MustCompile(`\(10/100, ([0-9.]+) samples/s\)`).FindStringSubmatch(errb.String())
	if m == nil {
		t.Fatalf("no rate after 10 samples: %q", errb.String())
	}
	if r, _ := strconv.ParseFloat(m[1], 64); r > 50 {
		t.Fatalf("rate %g samples/s for 10 samples in 200 ms", r)
	}
	p.Done()
}
