package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mustRead returns the bytes of the file at path.
func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestOutputSafety checks that no command destroys an input or replaces a
// file without --force: an output that is one of the inputs (by file
// identity: the same path, a hard or a symbolic link) is refused even with
// --force; an existing output is replaced only with --force; an output
// whose extension does not match its format gets a warning.
func TestOutputSafety(t *testing.T) {
	dir, in := writeSample(t)
	orig := mustRead(t, in)
	hard := filepath.Join(dir, "hard.ntcb")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	soft := filepath.Join(dir, "soft.ntcm")
	if err := os.Symlink(filepath.Base(in), soft); err != nil {
		t.Fatal(err)
	}
	x := encodeSample(t, dir, in, "x.ntcb")
	model := filepath.Join(dir, "m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", model, "--codec", "int8"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	existing := filepath.Join(dir, "existing.npy")
	if err := os.WriteFile(existing, []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	refused := []struct {
		name string
		args []string
		msg  string
	}{
		{"encode onto its input", []string{"encode", in, "-o", in, "--codec", "int8"}, "one of the inputs"},
		{"encode onto its input, --force", []string{"encode", in, "-o", in, "--codec", "int8", "--force"}, "one of the inputs"},
		{"encode onto a hard link of its input", []string{"encode", in, "-o", hard, "--codec", "int8", "-f"}, "one of the inputs"},
		{"encode onto its model", []string{"encode", in, "-o", model, "--model", model, "-f"}, "one of the inputs"},
		{"fit onto its input", []string{"fit", in, "-o", in, "--codec", "int8"}, "one of the inputs"},
		{"fit onto a symbolic link of its input", []string{"fit", in, "-o", soft, "--codec", "int8", "-f"}, "one of the inputs"},
		{"encode over an existing file", []string{"encode", in, "-o", existing, "--codec", "int8"}, "--force"},
		{"fit over an existing file", []string{"fit", in, "-o", existing, "--codec", "int8"}, "--force"},
		{"decode over an existing file", []string{"decode", x, "-o", existing}, "--force"},
		{"bench plot over an existing file", []string{"bench", in, "--codecs", "int8", "--plot", filepath.Join(dir, "old.svg")}, "--force"},
	}
	if err := os.WriteFile(filepath.Join(dir, "old.svg"), []byte("keep me"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := ntc(t, c.args...)
			if code != exitError || !strings.Contains(errs, c.msg) {
				t.Errorf("exit %d, want %d; stderr %q should mention %q", code, exitError, errs, c.msg)
			}
			if !bytes.Equal(mustRead(t, in), orig) {
				t.Fatal("the input changed")
			}
			for _, p := range []string{existing, filepath.Join(dir, "old.svg")} {
				if string(mustRead(t, p)) != "keep me" {
					t.Fatalf("%s was replaced", p)
				}
			}
		})
	}
	// --force replaces; the extension that does not match is warned about.
	for _, args := range [][]string{
		{"decode", x, "-o", existing, "--force"},
		{"bench", in, "--codecs", "int8", "--plot", filepath.Join(dir, "old.svg"), "--force"},
	} {
		if code, _, errs := ntc(t, args...); code != 0 {
			t.Fatalf("%v: exit %d: %s", args, code, errs)
		}
	}
	if b := mustRead(t, existing); !bytes.HasPrefix(b, []byte("\x93NUMPY")) {
		t.Fatal("decode --force did not replace the file")
	}
	if b := mustRead(t, filepath.Join(dir, "old.svg")); !bytes.Contains(b, []byte("<svg")) {
		t.Fatal("bench --force did not replace the chart")
	}
	code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(dir, "out.txt"), "--codec", "int8")
	if code != 0 || !strings.Contains(errs, "warning") || !strings.Contains(errs, "out.txt") || !strings.Contains(errs, ".ntcb") {
		t.Fatalf("encode -o out.txt: exit %d, stderr %q", code, errs)
	}
	code, _, errs = ntc(t, "fit", in, "-o", filepath.Join(dir, "o.npy"), "--codec", "int8")
	if code != 0 || !strings.Contains(errs, "warning") || !strings.Contains(errs, ".ntcm") {
		t.Fatalf("fit -o o.npy: exit %d, stderr %q", code, errs)
	}
}
