package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
)

// ntc runs the command line in-process and returns its exit code and
// output.
func ntc(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestEncodeDecodeInspectVerify(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "x.ntcb")
	code, out, errs := ntc(t, "encode", in, "-o", x, "--codec", "fp16", "--chunk-size", "200KiB", "--meta", "model=deit_tiny", "--meta", "layer=10")
	if code != 0 || !strings.Contains(out, "ratio") || !strings.Contains(out, "lossless") {
		t.Fatalf("encode: %d %q %q", code, out, errs)
	}
	y := filepath.Join(dir, "y.npy")
	if code, _, errs := ntc(t, "decode", x, "-o", y); code != 0 {
		t.Fatalf("decode: %d %s", code, errs)
	}
	a, _ := os.ReadFile(in)
	b, _ := os.ReadFile(y)
	if !bytes.Equal(a, b) {
		t.Fatal("decoded .npy differs from the input")
	}
	code, out, _ = ntc(t, "inspect", x, "--json")
	var info struct {
		Samples int     `json:"samples"`
		Ratio   float64 `json:"ratio"`
		Chunks  []any   `json:"chunks"`
		Meta    struct {
			Meta map[string]string `json:"meta"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil {
		t.Fatalf("inspect --json: %d %v\n%s", code, err, out)
	}
	if info.Samples != 8 || info.Ratio < 1 || len(info.Chunks) != 4 || info.Meta.Meta["layer"] != "10" {
		t.Fatalf("inspect: %+v", info)
	}
	if code, out, _ := ntc(t, "inspect", x, "--chunks"); code != 0 || !strings.Contains(out, "bits/value") {
		t.Fatalf("inspect --chunks: %d %s", code, out)
	}
	if code, out, _ := ntc(t, "verify", x); code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("verify: %d %s", code, out)
	}
	z := filepath.Join(dir, "z.safetensors")
	if code, _, errs := ntc(t, "decode", x, "-o", z, "--samples", "0,2-3", "--dtype", "float32"); code != 0 {
		t.Fatalf("decode --samples: %s", errs)
	}
	if st, err := os.Stat(z); err != nil || st.Size() < 3*197*192*4 {
		t.Fatalf("safetensors output: %v", err)
	}

	// A damaged file: verify exits 3 and names the problem.
	raw, _ := os.ReadFile(x)
	raw[len(raw)/2] ^= 0x10
	bad := filepath.Join(dir, "bad.ntcb")
	if err := os.WriteFile(bad, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errs = ntc(t, "verify", bad)
	if code != exitCorrupt || !strings.Contains(errs, "checksum") || !strings.Contains(errs, "bad.ntcb") {
		t.Fatalf("verify of a damaged file: %d %q", code, errs)
	}
	if code, _, _ := ntc(t, "decode", bad, "-o", filepath.Join(dir, "bad.npy")); code != exitCorrupt {
		t.Fatalf("decode of a damaged file: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(dir, "bad.npy")); !os.IsNotExist(err) {
		t.Fatal("decode of a damaged file left an output file")
	}
}

func TestExitCodes(t *testing.T) {
	dir := t.TempDir()
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"unknown verb", []string{"frobnicate"}, exitUsage, "unknown command"},
		{"unknown flag", []string{"encode", "--nope", "a.npy", "-o", "x"}, exitUsage, "unknown flag"},
		{"missing output", []string{"encode", "a.npy"}, exitUsage, "output"},
		{"no input", []string{"encode", "-o", "x.ntcb"}, exitUsage, "argument"},
		{"bad grid", []string{"encode", "a.npy", "-o", "x", "--grid", "14"}, exitUsage, "HxW"},
		{"bad codec", []string{"encode", "a.npy", "-o", "x", "--codec", "zip"}, exitUsage, "unknown codec"},
		{"bad samples", []string{"decode", "x.ntcb", "-o", "y.npy", "--samples", "3-1", "--keys", "a"}, exitUsage, "not both"},
		{"missing input file", []string{"encode", filepath.Join(dir, "none.npy"), "-o", filepath.Join(dir, "x.ntcb")}, exitError, "none.npy"},
		{"not an ntcb", []string{"verify", "main.go"}, exitError, "main.go"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := ntc(t, c.args...)
			if code != c.code || !strings.Contains(errs, c.msg) {
				t.Fatalf("exit %d, want %d; stderr %q should mention %q", code, c.code, errs, c.msg)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "x.ntcb")); !os.IsNotExist(err) {
		t.Fatal("a failed encode left an output file")
	}
}

// TestEncodeFlags checks flag parsing without running the command.
func TestEncodeFlags(t *testing.T) {
	var got *encodeOptions
	var gotArgs []string
	cmd := newEncodeCmd(&globals{}, func(_ context.Context, o *encodeOptions, args []string) error {
		got, gotArgs = o, args
		return nil
	})
	cmd.SetArgs([]string{"a.npy", "b.npz:tok", "-o", "x.ntcb", "--grid", "24x16", "--chunk-size", "2MiB", "--meta", "k=v=w", "--ratio", "8"})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	if got.gridH != 24 || got.gridW != 16 || got.chunkBytes != 2<<20 || got.metaMap["k"] != "v=w" || got.ratio != 8 || len(gotArgs) != 2 {
		t.Fatalf("%+v %v", got, gotArgs)
	}
}

func TestParseSelection(t *testing.T) {
	got, err := parseSelection("0, 5,7-9", 10)
	if err != nil || len(got) != 5 || got[4] != 9 {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []string{"10", "-1", "3-", "a", "5-2", ""} {
		if _, err := parseSelection(bad, 10); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseBytes(t *testing.T) {
	for s, want := range map[string]int{"4MiB": 4 << 20, "100": 100, "1.5k": 1536, "512MiB": 512 << 20} {
		if got, err := parseBytes(s); err != nil || got != want {
			t.Errorf("parseBytes(%q) = %d, %v", s, got, err)
		}
	}
	for _, s := range []string{"0", "1GiB", "x", "-5"} {
		if _, err := parseBytes(s); err == nil {
			t.Errorf("%q accepted", s)
		}
	}
}

// TestFitThenEncodeWithModel fits a model file once and encodes with it.
func TestFitThenEncodeWithModel(t *testing.T) {
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	m := filepath.Join(dir, "m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", m, "--codec", "fp16"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	x := filepath.Join(dir, "x.ntcb")
	if code, out, errs := ntc(t, "encode", in, "-o", x, "--model", m); code != 0 || !strings.Contains(out, "ratio") {
		t.Fatalf("encode --model: %d %s %s", code, out, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", x, "--model", m, "--ratio", "8"); code != exitUsage {
		t.Fatalf("--model with --ratio: %d %s", code, errs)
	}
	if code, out, errs := ntc(t, "verify", m); code != 0 || !strings.Contains(out, "model file") {
		t.Fatalf("verify of a model file: %d %s %s", code, out, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", x, "--model", x); code != exitError {
		t.Fatalf("a data file as --model: %d %s", code, errs)
	}
}
