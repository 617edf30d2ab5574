package main

import (
	"encoding/binary"
	"hash/crc32"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/tensorio"
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

// writeScaled writes the embedded sample's tokens, times scale, as a
// float32 .npy file dir/name, with the value at (sample, token, channel)
// set to poke when poke is not zero, and returns its path.
func writeScaled(t *testing.T, in, dir, name string, scale float32, at [3]int, poke float32) string {
	t.Helper()
	vals, shape, _, err := tensorio.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	n, tk, d := shape[0], shape[1], shape[2]
	for i := range vals {
		vals[i] *= scale
	}
	if poke != 0 {
		vals[(at[0]*tk+at[1])*d+at[2]] = poke
	}
	p := filepath.Join(dir, name)
	w, err := tensorio.Create(p, tensorio.Float32, n, tk, d)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	for i := range n {
		if err := w.WriteSample(vals[i*tk*d : (i+1)*tk*d]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRangeErrors checks values a codec cannot hold: large finite values
// (the learned codec's quantizer panicked on tokens times 1e5), int8
// scales beyond float16 (reported as a damaged output, exit 3), and a NaN,
// whose message named the output file and a flat index. Each is bad input
// (exit 1) with a message naming the input file, the sample's key, the
// token and the channel, and leaves no output.
func TestRangeErrors(t *testing.T) {
	dir, in := writeSample(t)
	big := writeScaled(t, in, dir, "big.npy", 1e5, [3]int{}, 0)
	huge := writeScaled(t, in, dir, "huge.npy", 1, [3]int{1, 7, 3}, 3e7)
	nan := writeScaled(t, in, dir, "n.npy", 1, [3]int{2, 100, 50}, float32(math.NaN()))
	in = writeScaled(t, in, dir, "a.npy", 1, [3]int{}, 0) // the same dtype as the others
	out := filepath.Join(dir, "out.ntcb")
	cases := []struct {
		name string
		args []string
		msg  []string
	}{
		{"learned codec, tokens times 1e5", []string{"encode", big, "-o", out}, []string{"big.npy", `big#0"`, "token", "channel", "65504"}},
		{"fit, tokens times 1e5", []string{"fit", big, "-o", filepath.Join(dir, "m.ntcm")}, []string{"big.npy", "token", "channel"}},
		{"int8 scale beyond float16", []string{"encode", in, huge, "-o", out, "--codec", "int8"}, []string{"huge.npy", `huge#1"`, "token 7, channel 3", "int8"}},
		{"int4 scale beyond float16", []string{"encode", huge, "-o", out, "--codec", "int4"}, []string{"huge.npy", "token 7, channel 3", "int4"}},
		{"NaN", []string{"encode", in, nan, "-o", out, "--codec", "int8"}, []string{"n.npy", `n#2"`, "token 100, channel 50", "NaN"}},
		{"NaN, learned codec", []string{"encode", in, nan, "-o", out}, []string{"n.npy", `n#2"`, "token 100, channel 50", "NaN"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, _, errs := ntc(t, c.args...)
			if code != exitError {
				t.Fatalf("exit %d, want %d: %s", code, exitError, errs)
			}
			for _, m := range c.msg {
				if !strings.Contains(errs, m) {
					t.Errorf("stderr %q does not mention %q", errs, m)
				}
			}
			if strings.Contains(errs, "out.ntcb") {
				t.Errorf("stderr %q blames the output", errs)
			}
			if _, err := os.Stat(out); !os.IsNotExist(err) {
				t.Errorf("a failed encode left its output")
			}
		})
	}
	// bench reports the codec it cannot run and does not panic.
	code, _, errs := ntc(t, "bench", big, "--codecs", "ntc,int8", "--ratios", "8")
	if code != 0 || !strings.Contains(errs, "skipped ntc") || !strings.Contains(errs, "65504") {
		t.Fatalf("bench: exit %d: %s", code, errs)
	}
}
