package container

import (
	"bytes"
	"testing"
)

// TestOverhead checks the closed form against a file actually written.
func TestOverhead(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteModel(7, make([]byte, 100)); err != nil {
		t.Fatal(err)
	}
	keys, payload := 0, 0
	for c := range 3 {
		var samples []SampleInfo
		for s := range c + 1 {
			k := string(rune('a'+c)) + string(rune('0'+s)) + "xyz"
			keys += len(k)
			samples = append(samples, SampleInfo{Key: k, Tokens: 5, Dim: 4})
		}
		p := make([]byte, 10*(c+1))
		payload += len(p)
		if err := w.WriteChunk(1, p, samples); err != nil {
			t.Fatal(err)
		}
	}
	meta := []byte(`{"hello":"world"}`)
	if err := w.Close(meta); err != nil {
		t.Fatal(err)
	}
	want := int64(buf.Len() - payload - 100)
	if got := Overhead(3, 1, 6, keys, len(meta)); got != want {
		t.Fatalf("Overhead = %d, file spends %d", got, want)
	}
}
