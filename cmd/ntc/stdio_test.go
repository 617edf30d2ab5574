package main

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// ntcStdin runs the command line with stdin as its standard input (os.Stdin
// replaced for the call) and returns its exit code and output.
func ntcStdin(t *testing.T, stdin []byte, args ...string) (int, []byte, string) {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stdin")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(stdin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Seek(0, 0); err != nil {
		t.Fatal(err)
	}
	saved := os.Stdin
	os.Stdin = f
	defer func() { os.Stdin = saved }()
	var out, errb bytes.Buffer
	code := run(t.Context(), args, &out, &errb)
	return code, out.Bytes(), errb.String()
}

// TestDirectoriesAndStdio checks inputs given as a directory (its token
// files and its subdirectories', sorted, keyed relative to it) and "-" for
// standard input and output where the format allows: encode and fit read
// a tensor and write their file to standard output; decode, inspect and
// verify read a .ntcb file; decode writes .npy or .safetensors.
func TestDirectoriesAndStdio(t *testing.T) {
	dir, in := writeSample(t)
	tokens := filepath.Join(dir, "tokens")
	for _, name := range []string{"b/2.npy", "a.npy", ".hidden.npy"} {
		copySample(t, in, filepath.Join(tokens, name))
	}
	if err := os.WriteFile(filepath.Join(tokens, "notes.txt"), []byte("not tokens"), 0o644); err != nil {
		t.Fatal(err)
	}
	d := filepath.Join(dir, "d.ntcb")
	if code, _, errs := ntc(t, "encode", tokens, "-o", d, "--codec", "int8"); code != 0 {
		t.Fatalf("encode DIR: %d %s", code, errs)
	}
	keys := inspectKeys(t, d)
	n := len(keys) / 2
	if len(keys) != 2*n || keys[0] != "a#0" || keys[n] != "b/2#0" || slices.ContainsFunc(keys, func(k string) bool { return strings.Contains(k, "hidden") }) {
		t.Fatalf("keys of a directory's files: %q", keys)
	}

	npy := mustRead(t, in)
	code, stream, errs := ntcStdin(t, npy, "encode", "-", "-o", "-", "--codec", "int8")
	if code != 0 || !bytes.HasPrefix(stream, []byte("\x89NTCB")) || !strings.Contains(errs, "ratio") {
		t.Fatalf("encode - -o -: exit %d, %d bytes, stderr %q", code, len(stream), errs)
	}
	x := filepath.Join(dir, "x.ntcb")
	if err := os.WriteFile(x, stream, 0o644); err != nil {
		t.Fatal(err)
	}
	if k := inspectKeys(t, x); len(k) != n || k[0] != "stdin#0" {
		t.Fatalf("keys of standard input: %q", k)
	}
	if code, out, errs := ntcStdin(t, stream, "verify", "-"); code != 0 || !strings.Contains(string(out), "ok") {
		t.Fatalf("verify -: %d %s %s", code, out, errs)
	}
	if code, out, errs := ntcStdin(t, stream, "inspect", "-"); code != 0 || !strings.Contains(string(out), "int8") {
		t.Fatalf("inspect -: %d %s %s", code, out, errs)
	}
	code, st, errs := ntcStdin(t, stream, "decode", "-", "-o", "-", "--format", "safetensors", "--samples", "1-2")
	if code != 0 || !strings.Contains(errs, "2 samples") {
		t.Fatalf("decode - -o -: %d %s", code, errs)
	}
	y := filepath.Join(dir, "y.safetensors")
	if err := os.WriteFile(y, st, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, shape, _, err := tensorio.ReadAll(y); err != nil || shape[0] != 2 {
		t.Fatalf("the decoded stream: %v %v", shape, err)
	}
	code, out, errs := ntcStdin(t, nil, "decode", x, "-o", "-")
	if code != 0 || !bytes.HasPrefix(out, []byte("\x93NUMPY")) || !bytes.Equal(out, npyOf(t, x, dir)) {
		t.Fatalf("decode -o - (npy): %d %s", code, errs)
	}
	code, model, errs := ntcStdin(t, npy, "fit", "-", "-o", "-", "--fit-samples", "4")
	if code != 0 || !bytes.HasPrefix(model, []byte("\x89NTCB")) {
		t.Fatalf("fit - -o -: %d %s", code, errs)
	}
	if code, out, errs := ntcStdin(t, model, "inspect", "-"); code != 0 || !strings.Contains(string(out), "model file") {
		t.Fatalf("inspect - of a model: %d %s %s", code, out, errs)
	}
	code, _, errs = ntcStdin(t, npy, "encode", "-", in, "-o", filepath.Join(dir, "z.ntcb"))
	if code != exitUsage || !strings.Contains(errs, "only input") {
		t.Fatalf("'-' with other inputs: %d %s", code, errs)
	}
}

// npyOf decodes the .ntcb file at x to a .npy file and returns its bytes.
func npyOf(t *testing.T, x, dir string) []byte {
	t.Helper()
	p := filepath.Join(dir, "ref.npy")
	os.Remove(p)
	if code, _, errs := ntc(t, "decode", x, "-o", p); code != 0 {
		t.Fatal(errs)
	}
	return mustRead(t, p)
}
