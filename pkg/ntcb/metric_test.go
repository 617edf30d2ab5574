package ntcb

import (
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// writeFields writes gradient fields [n, tokens, dim] as a float32 .npy.
func writeFields(t *testing.T, path string, f []float32, n, tokens, dim int) {
	t.Helper()
	w, err := tensorio.Create(path, tensorio.Float32, n, tokens, dim, tensorio.WithReplace(true))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		if err := w.WriteSample(f[i*tokens*dim : (i+1)*tokens*dim]); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLoadTaskFields checks that gradient fields read from their file, a
// few at a time, give the metric the same fields in memory give (hash and
// matrix), as a metric of their own and added to a matrix; that bad
// values and a file that changes under a fit are errors that name it.
func TestLoadTaskFields(t *testing.T) {
	dir := t.TempDir()
	l := codec.Layout{Tokens: 1 + 4*4, Dim: 8, Prefix: 1, GridH: 4, GridW: 4}
	const nf = 70
	tg := l.GridH * l.GridW
	r := rand.New(rand.NewPCG(1, 2))
	f := make([]float32, nf*tg*l.Dim)
	for i := range f {
		f[i] = float32(r.NormFloat64())
	}
	path := filepath.Join(dir, "g.npy")
	writeFields(t, path, f, nf, tg, l.Dim)
	want, err := codec.FieldsTaskMetric(f, nf, tg, l.Dim)
	if err != nil {
		t.Fatal(err)
	}
	got, err := LoadTaskMetric(path)
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA256() != want.SHA256() || got.Fields() != nf || got.Kind != codec.MetricFields {
		t.Errorf("fields file: hash %x, want %x; %d fields; kind %s", got.SHA256(), want.SHA256(), got.Fields(), got.Kind)
	}
	m, err := codec.NewTaskMetric(want.Normalized(), l.Dim, codec.MetricMatrix)
	if err != nil {
		t.Fatal(err)
	}
	m2, _ := codec.NewTaskMetric(want.Normalized(), l.Dim, codec.MetricMatrix)
	if err := LoadTaskFields(m, path); err != nil {
		t.Fatal(err)
	}
	if err := m2.SetFields(f, nf, tg); err != nil || m.SHA256() != m2.SHA256() {
		t.Errorf("--task-fields: %v, hash %x, want %x", err, m.SHA256(), m2.SHA256())
	}

	// A NaN in field 3.
	bad := append([]float32(nil), f...)
	bad[3*tg*l.Dim+2*l.Dim+5] = float32(math.NaN())
	badPath := filepath.Join(dir, "bad.npy")
	writeFields(t, badPath, bad, nf, tg, l.Dim)
	if _, err := LoadTaskMetric(badPath); !errors.Is(err, codec.ErrMetric) || !strings.Contains(err.Error(), badPath+": ") || !strings.Contains(err.Error(), "field 3, token 2, value 5") {
		t.Errorf("NaN: %v", err)
	}
	if err := LoadTaskFields(m2, badPath); !errors.Is(err, codec.ErrMetric) || !strings.Contains(err.Error(), "field 3") {
		t.Errorf("NaN, --task-fields: %v", err)
	}

	// The file replaced by fields of another shape before the fit reads
	// it again.
	writeFields(t, path, f[:(nf-1)*tg*l.Dim], nf-1, tg, l.Dim)
	spec, err := codec.Lookup("ntc")
	if err != nil {
		t.Fatal(err)
	}
	const n = 12
	src := make([]float32, n*l.Values())
	for i := range src {
		src[i] = float32(r.NormFloat64())
	}
	if _, err := spec.New(l, src, n, codec.Options{Ratio: 6, TaskMetric: got}); !errors.Is(err, codec.ErrMetric) || !strings.Contains(err.Error(), path+": ") || !strings.Contains(err.Error(), "shape [69 16 8]") {
		t.Errorf("fields changed under the fit: %v", err)
	}
}
