package tensorio

import (
	"archive/zip"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Golden files in testdata/tensorio. The ones Create writes are compared
// byte for byte; the fixtures are built by hand (other header versions,
// 2-D tensors, npz archives, a safetensors file of two tensors) and are
// checked by reading them. All of them seed the fuzz targets. Regenerate
// with: go test ./pkg/tensorio -run TestGolden -args -update

var goldenMeta = map[string]string{"model": "deit_tiny", "layer": "final"}

const goldenN, goldenT, goldenD = 2, 3, 4

func goldenValues() []float32 {
	v := testValues(goldenN * goldenT * goldenD)
	copy(v, specialValues[:6])
	return v
}

// goldenWritten lists the files that Create writes.
func goldenWritten() []string {
	var names []string
	for _, ext := range []string{extNPY, extSafetensors} {
		for _, dt := range allDTypes {
			names = append(names, fmt.Sprintf("%s_%dx%dx%d%s", dt, goldenN, goldenT, goldenD, ext))
		}
	}
	return names
}

// goldenFixture is a hand-built file with what it must read as.
type goldenFixture struct {
	name, entry string
	file        []byte
	dt          DType
	shape       []int
	values      []float32 // before rounding to dt
}

func goldenFixtures(t testing.TB) []goldenFixture {
	v := testValues(12)
	dict := npyDict("'<f4'", "False", "(3, 4)")
	tokens := npyOf(Float16, []int{2, 3, 4}, goldenValues())
	other := npyOf(Float32, []int{3, 4}, v)
	twoTensors := func() []byte {
		emb := encodeValues(BFloat16, v)
		ids := []byte{1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0}
		h := fmt.Sprintf(`{"__metadata__":{"format":"pt"},"emb":{"dtype":"BF16","shape":[3,4],"data_offsets":[0,%d]},"ids":{"dtype":"I64","shape":[3],"data_offsets":[%d,%d]}}`,
			len(emb), len(emb), len(emb)+len(ids))
		for len(h)%8 != 0 {
			h += " "
		}
		return stFile(h, append(emb, ids...))
	}
	return []goldenFixture{
		{"float32_3x4.npy", "", npyOf(Float32, []int{3, 4}, v), Float32, []int{3, 4}, v},
		{"float32_3x4_v2.npy", "", npyFile(2, dict+strings.Repeat(" ", 64-(12+len(dict)+1)%64)+"\n", encodeValues(Float32, v)), Float32, []int{3, 4}, v},
		{"float32_3x4_v3.npy", "", npyFile(3, dict+"\n", encodeValues(Float32, v)), Float32, []int{3, 4}, v},
		{"bfloat16_named_3x4.npy", "", npyFile(1, npyDict("'bfloat16'", "False", "(3, 4)")+"\n", encodeValues(BFloat16, v)), BFloat16, []int{3, 4}, v},
		{"stored.npz", "tokens", npzOf(t, zip.Store, npzEntry{"tokens", tokens}, npzEntry{"other", other}), Float16, []int{2, 3, 4}, goldenValues()},
		{"deflated.npz", "tokens", npzOf(t, zip.Deflate, npzEntry{"tokens", tokens}, npzEntry{"other", other}), Float16, []int{2, 3, 4}, goldenValues()},
		{"two_tensors.safetensors", "emb", twoTensors(), BFloat16, []int{3, 4}, v},
	}
}

// writeGolden writes the Create-written golden files into dir.
func writeGolden(t *testing.T, dir string) {
	v := goldenValues()
	for _, name := range goldenWritten() {
		dt, err := ParseDType(name[:strings.IndexByte(name, '_')])
		if err != nil {
			t.Fatal(err)
		}
		w, err := Create(filepath.Join(dir, name), dt, goldenN, goldenT, goldenD, WithMetadata(goldenMeta))
		if err != nil {
			t.Fatal(err)
		}
		for i := range goldenN {
			if err := w.WriteSample(v[i*goldenT*goldenD : (i+1)*goldenT*goldenD]); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestGolden(t *testing.T) {
	if *update {
		if err := os.MkdirAll(testdataDir, 0o755); err != nil {
			t.Fatal(err)
		}
		writeGolden(t, testdataDir)
		for _, fx := range goldenFixtures(t) {
			writeFile(t, testdataDir, fx.name, fx.file)
		}
	}
	tmp := t.TempDir()
	writeGolden(t, tmp)
	v := goldenValues()
	for _, name := range goldenWritten() {
		t.Run(name, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join(tmp, name))
			if err != nil {
				t.Fatal(err)
			}
			want, err := os.ReadFile(filepath.Join(testdataDir, name))
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("Create wrote %d bytes that differ from the golden file's %d (run with -update if intended)", len(got), len(want))
			}
			s, err := Open(filepath.Join(testdataDir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			want32 := make([]float32, len(v))
			for i := range v {
				want32[i] = rounded(s.DType(), v[i])
			}
			checkSource(t, s, s.DType(), []int{goldenN, goldenT, goldenD}, want32)
		})
	}
	for _, fx := range goldenFixtures(t) {
		t.Run(fx.name, func(t *testing.T) {
			spec := filepath.Join(testdataDir, fx.name)
			if fx.entry != "" {
				spec += ":" + fx.entry
			}
			s, err := Open(spec)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			defer s.Close()
			want := make([]float32, len(fx.values))
			for i := range want {
				want[i] = rounded(fx.dt, fx.values[i])
			}
			checkSource(t, s, fx.dt, fx.shape, want)
		})
	}
}
