package main

import (
	"encoding/binary"
	"hash/crc32"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
)

// writeSample writes the embedded real token sample into a new temporary
// directory and returns the directory and the file's path.
func writeSample(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	return dir, in
}

// encodeSample encodes the embedded sample with the int8 codec into
// dir/name and returns the file's path.
func encodeSample(t *testing.T, dir, in, name string) string {
	t.Helper()
	out := filepath.Join(dir, name)
	if code, _, errs := ntc(t, "encode", in, "-o", out, "--codec", "int8"); code != 0 {
		t.Fatalf("encode: %d %s", code, errs)
	}
	return out
}

// writeEdited writes a copy of the file at src, changed by edit, to dir/name.
func writeEdited(t *testing.T, src, dir, name string, edit func([]byte)) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	edit(b)
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestExitCodeTable checks every row of the README's exit-code table on
// the cases that got the wrong code: a file that is not an .ntcb file at
// all is bad input (1); a damaged one, checksums valid but a field beyond
// a format limit, is damage (3); invalid flag values are usage errors (2);
// a well-formed file of the wrong kind is bad input (1).
func TestExitCodeTable(t *testing.T) {
	dir, in := writeSample(t)
	x := encodeSample(t, dir, in, "x.ntcb")
	text := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(text, []byte("hello, world\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The footer (docs/format.md): index offset (8), index length (4),
	// version (2), reserved (2), CRC-32C of those 16 bytes (4), magic (8).
	overLimit := writeEdited(t, x, dir, "limit.ntcb", func(b []byte) {
		f := b[len(b)-28:]
		binary.LittleEndian.PutUint32(f[8:], 0xffffffff)
		binary.LittleEndian.PutUint32(f[16:], crc32.Checksum(f[:16], crc32.MakeTable(crc32.Castagnoli)))
	})
	badMagic := writeEdited(t, x, dir, "magic.ntcb", func(b []byte) { b[1] = 'M' })
	model := filepath.Join(dir, "m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", model, "--codec", "int8"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	out := filepath.Join(dir, "out.ntcb")
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"not an ntcb file", []string{"verify", text}, exitError, "not an ntcb file"},
		{"not an ntcb file, inspect", []string{"inspect", in}, exitError, "not an ntcb file"},
		{"damaged magic", []string{"verify", badMagic}, exitCorrupt, "magic.ntcb"},
		{"field over a limit, CRC valid", []string{"inspect", overLimit}, exitCorrupt, "limit.ntcb"},
		{"field over a limit, decode", []string{"decode", overLimit, "-o", filepath.Join(dir, "y.npy")}, exitCorrupt, "limit"},
		{"cosine target above 1", []string{"encode", in, "-o", out, "--quality", "cos=1.5"}, exitUsage, "cos"},
		{"bad quality", []string{"encode", in, "-o", out, "--quality", "psnr=3"}, exitUsage, "quality"},
		{"ratio for a fixed-rate codec", []string{"encode", in, "-o", out, "--codec", "int8", "--ratio", "4"}, exitUsage, "int8"},
		{"ratio beyond the limit", []string{"encode", in, "-o", out, "--ratio", "1e9"}, exitUsage, "ratio"},
		{"fit: ratio beyond the limit", []string{"fit", in, "-o", filepath.Join(dir, "n.ntcm"), "--ratio", "1e9"}, exitUsage, "ratio"},
		{"a data file as --model", []string{"encode", in, "-o", out, "--model", x}, exitError, "not a model file"},
		{"a model file to decode", []string{"decode", model, "-o", filepath.Join(dir, "z.npy")}, exitError, "model file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := ntc(t, c.args...)
			if code != c.code || !strings.Contains(errs, c.msg) {
				t.Fatalf("exit %d, want %d; stderr %q should mention %q", code, c.code, errs, c.msg)
			}
		})
	}
	for _, p := range []string{out, filepath.Join(dir, "y.npy"), filepath.Join(dir, "z.npy"), filepath.Join(dir, "n.ntcm")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a failed command left %s", p)
		}
	}
}

// panicWriter panics on every write.
type panicWriter struct{}

func (panicWriter) Write([]byte) (int, error) { panic("write on a broken stream") }

// TestPanicExitCode checks that a panic is reported as an internal error
// (exit 4) with its stack, not as the Go runtime's exit 2, which reads as
// a usage error.
func TestPanicExitCode(t *testing.T) {
	dir, in := writeSample(t)
	x := encodeSample(t, dir, in, "x.ntcb")
	var errb strings.Builder
	code := run(t.Context(), []string{"inspect", x}, panicWriter{}, &errb)
	if code != 4 || !strings.Contains(errb.String(), "internal error") || !strings.Contains(errb.String(), "broken stream") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
}
