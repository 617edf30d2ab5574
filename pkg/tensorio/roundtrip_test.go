package tensorio

import (
	"archive/zip"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var allDTypes = []DType{Float16, BFloat16, Float32, Float64}

// checkSource checks the geometry of s and that its samples are want,
// read first in order and then in a scrambled order.
func checkSource(t *testing.T, s Source, dt DType, shape []int, want []float32) {
	t.Helper()
	if s.DType() != dt {
		t.Errorf("DType = %v, want %v", s.DType(), dt)
	}
	if !slices.Equal(s.Shape(), shape) {
		t.Errorf("Shape = %v, want %v", s.Shape(), shape)
	}
	n, tk, d := 1, shape[len(shape)-2], shape[len(shape)-1]
	if len(shape) == 3 {
		n = shape[0]
	}
	if s.Batched() != (len(shape) == 3) || s.NumSamples() != n {
		t.Errorf("Batched, NumSamples = %v, %d for shape %v", s.Batched(), s.NumSamples(), shape)
	}
	if gt, gd := s.SampleShape(); gt != tk || gd != d {
		t.Errorf("SampleShape = %d, %d, want %d, %d", gt, gd, tk, d)
	}
	per := tk * d
	order := make([]int, 0, 2*n)
	for i := range n {
		order = append(order, i)
	}
	for i := range n { // backwards, then every other one
		order = append(order, (n-1-i*2%n+n)%n)
	}
	dst := make([]float32, per)
	for _, i := range order {
		if err := s.ReadSample(i, dst); err != nil {
			t.Fatalf("ReadSample(%d): %v", i, err)
		}
		for j, got := range dst {
			if w := want[i*per+j]; !sameFloat(got, w) {
				t.Fatalf("sample %d value %d = %v, want %v", i, j, got, w)
			}
		}
	}
	if err := s.ReadSample(n, dst); err == nil {
		t.Errorf("ReadSample(%d) of %d samples succeeded", n, n)
	}
	if n > 0 {
		if err := s.ReadSample(0, dst[:per-1]); err == nil {
			t.Errorf("ReadSample with a short destination succeeded")
		}
	}
}

func TestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	for _, ext := range []string{extNPY, extSafetensors} {
		for _, dt := range allDTypes {
			for _, n := range []int{0, 1, 3} {
				name := fmt.Sprintf("%s_%d%s", dt, n, ext)
				t.Run(name, func(t *testing.T) {
					const tokens, dim = 5, 7
					v := testValues(n * tokens * dim)
					copy(v, specialValues)
					want := make([]float32, len(v))
					for i := range v {
						want[i] = rounded(dt, v[i])
					}
					path := filepath.Join(dir, name)
					meta := map[string]string{"model": "deit_tiny", "layer": "<final>"}
					w, err := Create(path, dt, n, tokens, dim, WithMetadata(meta))
					if err != nil {
						t.Fatal(err)
					}
					defer w.Abort()
					for i := range n {
						if err := w.WriteSample(v[i*tokens*dim : (i+1)*tokens*dim]); err != nil {
							t.Fatal(err)
						}
					}
					if err := w.Close(); err != nil {
						t.Fatal(err)
					}
					s, err := Open(path)
					if err != nil {
						t.Fatal(err)
					}
					defer s.Close()
					if s.Name() != path {
						t.Errorf("Name = %q, want %q", s.Name(), path)
					}
					checkSource(t, s, dt, []int{n, tokens, dim}, want)
					if ext == extSafetensors && !maps.Equal(Metadata(s), meta) {
						t.Errorf("Metadata = %v, want %v", Metadata(s), meta)
					}
					data, shape, gdt, err := ReadAll(path)
					if err != nil || gdt != dt || !slices.Equal(shape, []int{n, tokens, dim}) || len(data) != len(want) {
						t.Fatalf("ReadAll = %d values, %v, %v, %v", len(data), shape, gdt, err)
					}
				})
			}
		}
	}
}

// TestRoundTrip2D reads [T, D] tensors, which Create does not write.
func TestRoundTrip2D(t *testing.T) {
	for _, dt := range allDTypes {
		v := testValues(6 * 10)
		want := make([]float32, len(v))
		for i := range v {
			want[i] = rounded(dt, v[i])
		}
		shape := []int{6, 10}
		t.Run("npy_"+dt.String(), func(t *testing.T) {
			s, err := openBytes("x.npy", npyOf(dt, shape, v), extNPY, "")
			if err != nil {
				t.Fatal(err)
			}
			checkSource(t, s, dt, shape, want)
		})
		t.Run("safetensors_"+dt.String(), func(t *testing.T) {
			s, err := openBytes("x.safetensors", stOf(t, "emb", dt, shape, v, nil), extSafetensors, "")
			if err != nil {
				t.Fatal(err)
			}
			checkSource(t, s, dt, shape, want)
			if Metadata(s) != nil {
				t.Errorf("Metadata = %v, want nil", Metadata(s))
			}
		})
	}
}

// TestLargeSample reads a sample bigger than the read buffer, so that it is
// read and converted in pieces, and writes one.
func TestLargeSample(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 2 x 12 MiB")
	}
	const tokens, dim = 3, readChunkBytes/2/3 + 5 // float16: > 1 chunk per sample
	v := testValues(2 * tokens * dim)
	dir := t.TempDir()
	for _, ext := range []string{extNPY, extSafetensors} {
		path := filepath.Join(dir, "big"+ext)
		w, err := Create(path, Float16, 2, tokens, dim)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 2 {
			if err := w.WriteSample(v[i*tokens*dim : (i+1)*tokens*dim]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		data, _, _, err := ReadAll(path)
		if err != nil {
			t.Fatal(err)
		}
		for i := range data {
			if want := rounded(Float16, v[i]); data[i] != want {
				t.Fatalf("%s value %d = %v, want %v", ext, i, data[i], want)
			}
		}
	}
}

func TestNPZ(t *testing.T) {
	v := testValues(2 * 3 * 4)
	tokens := npyOf(Float16, []int{2, 3, 4}, v)
	other := npyOf(Float32, []int{3, 4}, v[:12])
	wantTokens := make([]float32, len(v))
	for i := range v {
		wantTokens[i] = rounded(Float16, v[i])
	}
	for _, method := range []uint16{zip.Store, zip.Deflate} {
		t.Run(fmt.Sprint("method", method), func(t *testing.T) {
			two := npzOf(t, method, npzEntry{"tokens", tokens}, npzEntry{"other", other})
			for _, name := range []string{"tokens", "tokens.npy"} {
				s, err := openBytes("a.npz:"+name, two, extNPZ, name)
				if err != nil {
					t.Fatal(err)
				}
				checkSource(t, s, Float16, []int{2, 3, 4}, wantTokens)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			s, err := openBytes("a.npz:other", two, extNPZ, "other")
			if err != nil {
				t.Fatal(err)
			}
			checkSource(t, s, Float32, []int{3, 4}, v[:12])

			_, err = openBytes("a.npz", two, extNPZ, "")
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `"other", "tokens"`) && !strings.Contains(err.Error(), `"tokens", "other"`) {
				t.Errorf("open without a name: %v", err)
			}
			_, err = openBytes("a.npz:nope", two, extNPZ, "nope")
			if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), `no array "nope"`) {
				t.Errorf("open of a missing name: %v", err)
			}

			one := npzOf(t, method, npzEntry{"tokens", tokens})
			s, err = openBytes("b.npz", one, extNPZ, "")
			if err != nil {
				t.Fatal(err)
			}
			checkSource(t, s, Float16, []int{2, 3, 4}, wantTokens)
		})
	}
}

// TestNPZChecksum checks that a deflated entry whose data does not match
// its CRC-32 is refused when read to its end.
func TestNPZChecksum(t *testing.T) {
	v := testValues(2 * 3 * 4)
	b := npzOf(t, zip.Deflate, npzEntry{"tokens", npyOf(Float32, []int{2, 3, 4}, v)})
	zr, err := zip.NewReader(strings.NewReader(string(b)), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	// The CRC-32 is at offset 14 of the local header and 16 of the central
	// directory record; archive/zip checks the central one.
	crc := zr.File[0].CRC32
	bad := []byte(string(b))
	for i := 0; i+4 <= len(bad); i++ {
		if uint32(bad[i])|uint32(bad[i+1])<<8|uint32(bad[i+2])<<16|uint32(bad[i+3])<<24 == crc {
			bad[i] ^= 0xff
		}
	}
	s, err := openBytes("c.npz", bad, extNPZ, "")
	if err != nil {
		t.Fatal(err)
	}
	dst := make([]float32, 12)
	if err := s.ReadSample(0, dst); err != nil {
		t.Fatalf("first sample: %v", err)
	}
	err = s.ReadSample(1, dst)
	if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("last sample of a bad CRC: %v", err)
	}
}

func TestOpenFiles(t *testing.T) {
	dir := t.TempDir()
	v := testValues(2 * 3 * 4)
	npz := npzOf(t, zip.Deflate, npzEntry{"tokens", npyOf(Float16, []int{2, 3, 4}, v)}, npzEntry{"x", npyOf(Float16, []int{3, 4}, v[:12])})
	writeFile(t, dir, "a.npz", npz)
	writeFile(t, dir, "odd:name.npy", npyOf(Float32, []int{3, 4}, v[:12]))
	writeFile(t, dir, "b.safetensors", stOf(t, "tokens", BFloat16, []int{2, 3, 4}, v, nil))
	writeFile(t, dir, "c.bin", npyOf(Float32, []int{3, 4}, v[:12]))
	writeFile(t, dir, "zip.npy", npz)

	for _, spec := range []string{"a.npz:tokens", "a.npz:x", "odd:name.npy", "b.safetensors", "b.safetensors:tokens"} {
		s, err := Open(filepath.Join(dir, spec))
		if err != nil {
			t.Errorf("Open(%s): %v", spec, err)
			continue
		}
		if _, err := readAllSamples(s); err != nil {
			t.Errorf("%s: %v", spec, err)
		}
		if err := s.Close(); err != nil {
			t.Errorf("Close(%s): %v", spec, err)
		}
		if err := s.ReadSample(0, make([]float32, 12)); err == nil {
			t.Errorf("%s: read after Close succeeded", spec)
		}
	}
	for _, tc := range []struct {
		spec, msg string
		want      error
	}{
		{"c.bin", "unknown file type", ErrFormat},
		{"odd:name.npy:x", "one unnamed array", ErrNotFound},
		{"zip.npy", "looks like a zip", ErrFormat},
		{"a.npz", `holds 2 arrays`, ErrNotFound},
		{"b.safetensors:nope", `no tensor "nope"`, ErrNotFound},
		{"missing.npy", "no such file", os.ErrNotExist},
	} {
		_, err := Open(filepath.Join(dir, tc.spec))
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Open(%s) = %v, want %v containing %q", tc.spec, err, tc.want, tc.msg)
		}
	}
}

func TestCreateErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "x.npy")
	for _, tc := range []struct {
		name string
		f    func() error
		want error
	}{
		{"bad dtype", func() error { _, err := Create(p, 0, 1, 2, 3); return err }, ErrDType},
		{"empty sample", func() error { _, err := Create(p, Float16, 1, 0, 3); return err }, ErrShape},
		{"negative n", func() error { _, err := Create(p, Float16, -1, 2, 3); return err }, ErrShape},
		{"huge sample", func() error { _, err := Create(p, Float16, 1, 1<<20, 1<<20); return err }, ErrTooLarge},
		{"extension", func() error { _, err := Create(filepath.Join(dir, "x.npz"), Float16, 1, 2, 3); return err }, ErrFormat},
	} {
		if err := tc.f(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := Create(filepath.Join(dir, "x.safetensors"), Float16, 1, 2, 3, WithTensorName("__metadata__")); err == nil {
		t.Error("tensor name __metadata__ accepted")
	}
	if _, err := Create(filepath.Join(dir, "x.safetensors"), Float16, 1, 2, 3, WithTensorName("")); err == nil {
		t.Error("empty tensor name accepted")
	}
	if left, _ := os.ReadDir(dir); len(left) != 0 {
		t.Errorf("failed Creates left %v", left)
	}
}

// TestWriterCommit checks that the destination appears only on a good
// Close, and that nothing else is ever left behind.
func TestWriterCommit(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.safetensors")
	sample := testValues(6)
	entries := func() []string {
		es, _ := os.ReadDir(dir)
		var names []string
		for _, e := range es {
			names = append(names, e.Name())
		}
		return names
	}

	// Abort: nothing left.
	w, err := Create(p, Float32, 2, 2, 3, WithTensorName("feat"))
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSample(sample); err != nil {
		t.Fatal(err)
	}
	// An unnamed temporary file (O_TMPFILE), or the named fallback.
	if e := entries(); len(e) > 1 || len(e) == 1 && !strings.Contains(e[0], ".tmp-ntc-") {
		t.Errorf("while writing, the directory holds %v", e)
	}
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if e := entries(); len(e) != 0 {
		t.Fatalf("Abort left %v", e)
	}
	if err := w.WriteSample(sample); err == nil {
		t.Error("WriteSample after Abort succeeded")
	}

	// Too few samples: Close fails, nothing left.
	w, _ = Create(p, Float32, 2, 2, 3)
	w.WriteSample(sample)
	if err := w.Close(); err == nil || !strings.Contains(err.Error(), "1 of 2 samples") {
		t.Errorf("Close after 1 of 2 samples: %v", err)
	}
	if e := entries(); len(e) != 0 {
		t.Fatalf("failed Close left %v", e)
	}

	// Wrong sample length, then too many samples.
	w, _ = Create(p, Float32, 1, 2, 3)
	if err := w.WriteSample(sample[:5]); err == nil {
		t.Error("short sample accepted")
	}
	if err := w.WriteSample(sample); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteSample(sample); err == nil {
		t.Error("sample beyond n accepted")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Abort(); err != nil {
		t.Errorf("Abort after Close: %v", err)
	}
	if e := entries(); !slices.Equal(e, []string{"out.safetensors"}) {
		t.Fatalf("after Close: %v", e)
	}
	s, err := Open(p + ":tokens")
	if err != nil {
		t.Fatal(err)
	}
	checkSource(t, s, Float32, []int{1, 2, 3}, sample)
	s.Close()

	// Replacing an existing file: the old one stays until Close.
	w, _ = Create(p, Float16, 1, 2, 3)
	w.WriteSample(sample)
	if _, _, dt, err := ReadAll(p); err != nil || dt != Float32 {
		t.Errorf("old file during the write: %v, %v", dt, err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, dt, err := ReadAll(p); err != nil || dt != Float16 {
		t.Errorf("new file after Close: %v, %v", dt, err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, %v", fi.Mode(), err)
	}
}

func TestReadAllLimit(t *testing.T) {
	// A header that declares 2^31 values of float16 needs a 4 GiB file;
	// a sparse file costs nothing on disk.
	dir := t.TempDir()
	p := filepath.Join(dir, "big.npy")
	hdr := npyHeaderBytes(Float16, []int{1 << 11, 1 << 10, 1 << 10})
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(hdr)
	if err := f.Truncate(int64(len(hdr)) + 1<<32); err != nil {
		f.Close()
		t.Skip("no sparse files:", err)
	}
	f.Close()
	if _, _, _, err := ReadAll(p); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadAll of 2^31 values: %v", err)
	}
}

func TestParseDType(t *testing.T) {
	for _, dt := range allDTypes {
		if got, err := ParseDType(dt.String()); got != dt || err != nil {
			t.Errorf("ParseDType(%q) = %v, %v", dt.String(), got, err)
		}
	}
	for s, want := range map[string]DType{"FP16": Float16, "bf16": BFloat16, "float": Float32, "double": Float64} {
		if got, err := ParseDType(s); got != want || err != nil {
			t.Errorf("ParseDType(%q) = %v, %v", s, got, err)
		}
	}
	if _, err := ParseDType("int8"); !errors.Is(err, ErrDType) {
		t.Errorf("ParseDType(int8): %v", err)
	}
	if DType(0).Valid() || DType(9).String() != "DType(9)" || Float64.Size() != 8 {
		t.Error("invalid DType handling")
	}
}
