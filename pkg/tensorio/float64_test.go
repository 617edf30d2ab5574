package tensorio

import (
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestReadAllFloat64(t *testing.T) {
	dir := t.TempDir()
	// float64 values that float32 cannot hold come back exactly.
	want := []float64{0.1, 1.0 / 3, -2.5e-300, 7}
	h := "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"
	for (10+len(h)+1)%64 != 0 {
		h += " "
	}
	h += "\n"
	b := append([]byte("\x93NUMPY\x01\x00"), byte(len(h)), byte(len(h)>>8))
	b = append(b, h...)
	for _, v := range want {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(v))
	}
	p := filepath.Join(dir, "m.npy")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	got, shape, err := ReadAllFloat64(p)
	if err != nil {
		t.Fatal(err)
	}
	if len(shape) != 2 || shape[0] != 2 || shape[1] != 2 {
		t.Fatalf("shape %v", shape)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("value %d: %v, want %v", i, got[i], want[i])
		}
	}
	// Other dtypes widen exactly; a missing file names itself.
	for _, dt := range []DType{Float16, BFloat16, Float32} {
		q := filepath.Join(dir, dt.String()+".safetensors")
		w, err := Create(q, dt, 1, 2, 3, WithTensorName("w"))
		if err != nil {
			t.Fatal(err)
		}
		vals := []float32{1, -2, 0.5, 3, 0.25, -8}
		if err := w.WriteSample(vals); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		got, _, err := ReadAllFloat64(q + ":w")
		if err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if got[i] != float64(v) {
				t.Fatalf("%s value %d: %v, want %v", dt, i, got[i], v)
			}
		}
	}
	if _, _, err := ReadAllFloat64(filepath.Join(dir, "none.npy")); err == nil {
		t.Fatal("missing file read")
	}
}
