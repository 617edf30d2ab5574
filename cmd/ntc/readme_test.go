package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/bench"
)

// The README's first table is the default bench's quality figures, written
// by this file's tests: after a change to a codec, run
//
//	go test ./cmd/ntc -run TestREADME -update-readme
//
// (with the shared data folder next to the repository, to also refresh the
// full-file figure).
var updateREADME = flag.Bool("update-readme", false, "rewrite README.md's bench figures from the default bench")

// Markers of the generated parts of README.md.
const (
	tableBegin = "<!-- bench-table: written by `go test ./cmd/ntc -run TestREADME -update-readme` from the default bench; do not edit -->"
	tableEnd   = "<!-- end bench-table -->"
	fullBegin  = "<!-- bench-full: written by `go test ./cmd/ntc -run TestREADME -update-readme` with ../shared; do not edit -->"
	fullEnd    = "<!-- end bench-full -->"
)

// maxGapDB is how far the default bench's ntc@8x SNR may be from the same
// codec's on the full shared block-10 file.
const maxGapDB = 1

// benchRow is what the README's figures need of a bench row.
type benchRow struct {
	Codec      string   `json:"codec"`
	Target     *float64 `json:"target_ratio"`
	Lossless   bool     `json:"lossless"`
	Ratio      float64  `json:"ratio"`
	SNR        *float64 `json:"snr_db"`
	CosMean    float64  `json:"cos_mean"`
	CosP1      float64  `json:"cos_p1"`
	FileBytes  float64  `json:"file_bytes"`
	ModelBytes float64  `json:"model_bytes"`
}

func (r benchRow) label() string {
	b := bench.Row{Codec: r.Codec}
	if r.Target != nil {
		b.TargetRatio = *r.Target
	}
	return b.Label()
}

// runBenchJSON runs bench with args and returns its rows.
func runBenchJSON(t *testing.T, args ...string) []benchRow {
	t.Helper()
	code, out, errs := ntc(t, append([]string{"bench", "--json", "--repeat", "1"}, args...)...)
	var rep struct {
		Rows []benchRow `json:"rows"`
	}
	if err := json.Unmarshal([]byte(out), &rep); code != 0 || err != nil {
		t.Fatalf("bench %v: exit %d, %v\n%s", args, code, err, errs)
	}
	return rep.Rows
}

var defaultBench struct {
	once sync.Once
	rows []benchRow
}

// defaultBenchRows returns the rows of the default bench, 'ntc bench' with
// no input (--repeat changes only timings), run once per test binary.
func defaultBenchRows(t *testing.T) []benchRow {
	defaultBench.once.Do(func() { defaultBench.rows = runBenchJSON(t) })
	if defaultBench.rows == nil {
		t.Fatal("the default bench failed")
	}
	return defaultBench.rows
}

func findRow(t *testing.T, rows []benchRow, label string) benchRow {
	t.Helper()
	for _, r := range rows {
		if r.label() == label {
			return r
		}
	}
	t.Fatalf("no %s row", label)
	return benchRow{}
}

// readmeTable writes the README's part on the default bench.
func readmeTable(rows []benchRow) string {
	var b strings.Builder
	f := sample.Bench
	fmt.Fprintf(&b, "`go run ./cmd/ntc bench` runs on `internal/sample/%s`: %s (%d x 197 x 192 float16, %.1f MB).\n",
		f.Name, f.About, f.Samples, float64(len(f.NPY()))/1e6)
	b.WriteString("The learned codec's model is fitted on them and stored in each file, and the ratio counts it")
	for _, r := range rows {
		if r.label() == "ntc@8x" && r.FileBytes > 0 {
			fmt.Fprintf(&b, " (%.1f%% of the 8x file)", 100*r.ModelBytes/r.FileBytes)
		}
	}
	b.WriteString(". Its quality figures:\n\n")
	b.WriteString("| codec | ratio | SNR dB | cos mean | cos p1 |\n| --- | ---: | ---: | ---: | ---: |\n")
	for _, r := range rows {
		if r.Codec == bench.RawCodec {
			continue
		}
		snr := "lossless"
		if r.SNR != nil && !r.Lossless {
			snr = fmt.Sprintf("%.1f", *r.SNR)
		}
		fmt.Fprintf(&b, "| %s | %.2fx | %s | %.4f | %.4f |\n", r.label(), r.Ratio, snr, r.CosMean, r.CosP1)
	}
	return b.String()
}

// readmeFull writes the README's sentence on the full shared file.
func readmeFull(full, embedded benchRow) string {
	return fmt.Sprintf("On the full 192-sample block-10 file (`deit_tiny_block10_dev.npy` in the project's shared data, "+
		"not in the repository) ntc@8x reads %.1f dB at %.2fx, its model %.1f%% of the file: "+
		"the default bench's %.1f dB is within %d dB of it.\n",
		*full.SNR, full.Ratio, 100*full.ModelBytes/full.FileBytes, *embedded.SNR, maxGapDB)
}

const readmePath = "../../README.md"

// readmePart returns the text between begin and end in the README.
func readmePart(t *testing.T, readme, begin, end string) string {
	t.Helper()
	i, j := strings.Index(readme, begin), strings.Index(readme, end)
	if i < 0 || j < i {
		t.Fatalf("README.md lacks the markers %q ... %q", begin, end)
	}
	return strings.TrimPrefix(readme[i+len(begin):j], "\n")
}

// replacePart replaces the text between begin and end in README.md.
func replacePart(t *testing.T, begin, end, text string) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	readmePart(t, s, begin, end)
	i, j := strings.Index(s, begin)+len(begin), strings.Index(s, end)
	s = s[:i] + "\n" + text + s[j:]
	if err := os.WriteFile(readmePath, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
}

var numberRE = regexp.MustCompile(`-?[0-9]+(\.[0-9]+)?`)

// sameFigures reports where got (what the code gives now) and want (what
// the README says) differ: the words must be equal, whole numbers too, and
// each decimal within one unit of the last digit the README prints, so that
// rounding on another machine does not fail the test but a change of a
// codec does.
func sameFigures(got, want string) error {
	gw, ww := strings.Fields(got), strings.Fields(want)
	if len(gw) != len(ww) {
		return fmt.Errorf("%d words, want %d", len(gw), len(ww))
	}
	for k := range gw {
		gn, wn := numberRE.FindAllString(gw[k], -1), numberRE.FindAllString(ww[k], -1)
		if numberRE.ReplaceAllString(gw[k], "#") != numberRE.ReplaceAllString(ww[k], "#") || len(gn) != len(wn) {
			return fmt.Errorf("%q, README says %q", gw[k], ww[k])
		}
		for i := range gn {
			g, _ := strconv.ParseFloat(gn[i], 64)
			w, _ := strconv.ParseFloat(wn[i], 64)
			unit := 0.0 // counts are exact
			if d := strings.IndexByte(wn[i], '.'); d >= 0 {
				unit = math.Pow(10, -float64(len(wn[i])-d-1))
			}
			if math.Abs(g-w) > unit*1.001 {
				return fmt.Errorf("%s, README says %s (in %q)", gn[i], wn[i], ww[k])
			}
		}
	}
	return nil
}

// TestREADMEBench checks that the README's first table and what it says
// of the default bench's input are what the default bench measures now.
func TestREADMEBench(t *testing.T) {
	checkPart(t, tableBegin, tableEnd, readmeTable(defaultBenchRows(t)))
}

// checkPart checks that the README's text between begin and end says what
// got says, or with -update-readme writes got there.
func checkPart(t *testing.T, begin, end, got string) {
	t.Helper()
	if *updateREADME {
		replacePart(t, begin, end, got)
		return
	}
	readme, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	if err := sameFigures(got, readmePart(t, string(readme), begin, end)); err != nil {
		t.Errorf("README.md does not say what the code gives: %v\nrun go test ./cmd/ntc -run TestREADME -update-readme; now:\n%s", err, got)
	}
}

// sharedBlock10 returns the shared block-10 file, or skips the test when
// the shared data folder (../shared from the repository root) is absent,
// as it is in a fresh clone.
func sharedBlock10(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data absent: %v", err)
	}
	return p
}

// TestREADMEBenchFullFile checks that the default bench's ntc@8x row is
// within maxGapDB of the same codec on the full shared block-10 file, and
// that the README says what that file gives.
func TestREADMEBenchFullFile(t *testing.T) {
	path := sharedBlock10(t)
	embedded := findRow(t, defaultBenchRows(t), "ntc@8x")
	full := findRow(t, runBenchJSON(t, path, "--codecs", "ntc", "--ratios", "8"), "ntc@8x")
	if embedded.SNR == nil || full.SNR == nil {
		t.Fatalf("no SNR: embedded %+v, full %+v", embedded, full)
	}
	if gap := math.Abs(*full.SNR - *embedded.SNR); gap > maxGapDB {
		t.Errorf("ntc@8x: %.2f dB on the embedded sample, %.2f dB on the full file: %.2f dB apart, more than %d",
			*embedded.SNR, *full.SNR, gap, maxGapDB)
	}
	checkPart(t, fullBegin, fullEnd, readmeFull(full, embedded))
}

func TestSameFigures(t *testing.T) {
	const readme = "| ntc@8x | 8.00x | 14.3 | 0.9784 | on 48 samples"
	for _, tc := range []struct {
		got string
		ok  bool
	}{
		{readme, true},
		{"| ntc@8x | 8.01x | 14.4 | 0.9783 | on 48 samples", true},
		{"| ntc@8x | 8.00x | 15.1 | 0.9784 | on 48 samples", false},
		{"| ntc@8x | 8.03x | 14.3 | 0.9784 | on 48 samples", false},
		{"| ntc@8x | 8.00x | 14.3 | 0.9790 | on 48 samples", false},
		{"| ntc@8x | 8.00x | 14.3 | 0.9784 | on 47 samples", false},
		{"| ntc@4x | 8.00x | 14.3 | 0.9784 | on 48 samples", false},
		{"| ntc@8x | 8.00x | 14.3 | 0.9784 | on 48 files", false},
		{"| ntc@8x | 8.00x | 14.3 | 0.9784 |", false},
	} {
		if err := sameFigures(tc.got, readme); (err == nil) != tc.ok {
			t.Errorf("%q: %v, want ok %v", tc.got, err, tc.ok)
		}
	}
}
