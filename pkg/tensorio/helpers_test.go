package tensorio

import (
	"archive/zip"
	"bytes"
	"encoding/binary"
	"flag"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
)

var update = flag.Bool("update", false, "rewrite the files in testdata/tensorio")

// testdataDir holds the golden files and fuzz seeds of this package.
var testdataDir = filepath.Join("..", "..", "testdata", "tensorio")

// openBytes opens an in-memory file of the given extension, as the fuzz
// targets do.
func openBytes(name string, b []byte, ext, entry string) (*source, error) {
	r := bytes.NewReader(b)
	switch ext {
	case extNPY:
		return openNPY(name, r, int64(len(b)), nil)
	case extNPZ:
		return openNPZ(name, r, int64(len(b)), entry, nil)
	case extSafetensors:
		return openSafetensors(name, r, int64(len(b)), entry, nil)
	}
	panic("unknown extension " + ext)
}

// readAllSamples reads every sample of s.
func readAllSamples(s Source) ([]float32, error) {
	t, d := s.SampleShape()
	out := make([]float32, s.NumSamples()*t*d)
	for i := range s.NumSamples() {
		if err := s.ReadSample(i, out[i*t*d:(i+1)*t*d]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// testValues returns n deterministic values with a mix of magnitudes and
// signs.
func testValues(n int) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(math.Sin(float64(i)*0.731) * math.Pow(2, float64(i%7)-3))
	}
	return v
}

// specialValues are values whose conversion is easy to get wrong.
var specialValues = []float32{0, float32(math.Copysign(0, -1)), 1, -1, 65504, -65504, 1e-7, 6e-8,
	float32(math.Inf(1)), float32(math.Inf(-1)), 3.1415927, 1e30, -2.5e-30}

// rounded returns what v becomes after a trip through dt.
func rounded(dt DType, v float32) float32 {
	switch dt {
	case Float16:
		return f16.ToFloat32(f16.FromFloat32(v))
	case BFloat16:
		return f16.BF16ToFloat32(f16.BF16FromFloat32(v))
	}
	return v
}

// sameFloat compares bit patterns, except that all NaNs are equal.
func sameFloat(a, b float32) bool {
	if a != a && b != b {
		return true
	}
	return math.Float32bits(a) == math.Float32bits(b)
}

// encodeValues returns v stored as dt.
func encodeValues(dt DType, v []float32) []byte {
	b := make([]byte, len(v)*dt.Size())
	encode(dt, b, v)
	return b
}

// npyFile builds a .npy file from a header dict and data, with the given
// major version (1, 2 or 3) and no padding checks.
func npyFile(major byte, dict string, data []byte) []byte {
	b := []byte(npyMagic)
	b = append(b, major, 0)
	if major == 1 {
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)))
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(dict)))
	}
	b = append(b, dict...)
	return append(b, data...)
}

// stFile builds a .safetensors file from a JSON header and data.
func stFile(header string, data []byte) []byte {
	b := binary.LittleEndian.AppendUint64(nil, uint64(len(header)))
	b = append(b, header...)
	return append(b, data...)
}

// npyOf returns a complete .npy file of the given shape holding v.
func npyOf(dt DType, shape []int, v []float32) []byte {
	return append(npyHeaderBytes(dt, shape), encodeValues(dt, v)...)
}

// stOf returns a complete .safetensors file of one tensor.
func stOf(t *testing.T, name string, dt DType, shape []int, v []float32, meta map[string]string) []byte {
	t.Helper()
	data := encodeValues(dt, v)
	h, err := safetensorsHeaderBytes(name, dt, shape, int64(len(data)), meta)
	if err != nil {
		t.Fatal(err)
	}
	return append(h, data...)
}

// npzEntry is one array of an npz archive built by npzOf.
type npzEntry struct {
	name string // without .npy
	npy  []byte
}

// npzOf builds a .npz archive with entries stored or deflated. The
// timestamps are fixed so that the bytes are reproducible.
func npzOf(t testing.TB, method uint16, entries ...npzEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		w, err := zw.CreateHeader(&zip.FileHeader{
			Name:     e.name + npySuffix,
			Method:   method,
			Modified: time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(e.npy); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeFile writes b to dir/name and returns the path.
func writeFile(t *testing.T, dir, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
