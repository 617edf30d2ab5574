package sample

import (
	"slices"
	"testing"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// TestFiles checks that each embedded file holds what its description
// says, and that Small is Bench's first samples, as scripts/make_sample.py
// cuts them.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	read := func(f File) []float32 {
		t.Helper()
		path, err := f.Save(dir)
		if err != nil {
			t.Fatal(err)
		}
		vals, shape, dt, err := tensorio.ReadAll(path)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(shape, []int{f.Samples, 197, 192}) || dt != tensorio.Float16 {
			t.Fatalf("%s: %v %v, want %d x 197 x 192 float16", f.Name, shape, dt, f.Samples)
		}
		return vals
	}
	bench, small := read(Bench), read(Small)
	if !slices.Equal(small, bench[:len(small)]) {
		t.Error("Small is not the first samples of Bench")
	}
	if Name != Small.Name || len(NPY()) != len(Small.NPY()) {
		t.Error("Name and NPY are not Small's")
	}
}
