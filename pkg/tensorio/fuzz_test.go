package tensorio

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// addSeeds adds the testdata files with extension ext and the malformed
// cases of that extension to the corpus.
func addSeeds(f *testing.F, ext string) {
	files, _ := filepath.Glob(filepath.Join(testdataDir, "*"+ext))
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, tc := range malformedCases(f) {
		if tc.ext == ext {
			f.Add(tc.file)
		}
	}
}

// fuzzOpen opens b and, when that succeeds, reads every sample forwards
// and a few backwards. It must never panic; errors are fine.
func fuzzOpen(t *testing.T, b []byte, ext, entry string) {
	s, err := openBytes("fuzz"+ext, b, ext, entry)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "fuzz"+ext) {
			t.Errorf("error does not name the file: %v", err)
		}
		return
	}
	defer s.Close()
	tk, d := s.SampleShape()
	if tk <= 0 || d <= 0 || s.NumSamples() < 0 || int64(tk)*int64(d) > maxSampleValues {
		t.Fatalf("opened with shape %v", s.Shape())
	}
	dst := make([]float32, tk*d)
	for i := range s.NumSamples() {
		if err := s.ReadSample(i, dst); err != nil {
			return
		}
	}
	for i := s.NumSamples() - 1; i >= 0 && i >= s.NumSamples()-3; i-- {
		if err := s.ReadSample(i, dst); err != nil {
			return
		}
	}
}

func FuzzNPY(f *testing.F) {
	addSeeds(f, extNPY)
	f.Fuzz(func(t *testing.T, b []byte) { fuzzOpen(t, b, extNPY, "") })
}

func FuzzSafetensors(f *testing.F) {
	addSeeds(f, extSafetensors)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzOpen(t, b, extSafetensors, "")
		fuzzOpen(t, b, extSafetensors, "emb")
	})
}

func FuzzNPZ(f *testing.F) {
	addSeeds(f, extNPZ)
	f.Fuzz(func(t *testing.T, b []byte) {
		fuzzOpen(t, b, extNPZ, "")
		fuzzOpen(t, b, extNPZ, "tokens")
	})
}
