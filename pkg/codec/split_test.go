package codec

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/ntc-project/ntc/internal/f16"
)

// splitPayload returns the payload of samples [a, b) of a split payload.
func splitPayload(p []byte, head int, parts []int, a, b int) []byte {
	at := head
	for _, n := range parts[:a] {
		at += n
	}
	end := at
	for _, n := range parts[a:b] {
		end += n
	}
	return append(slices.Clone(p[:head]), p[at:end]...)
}

// checkSplit checks that a payload of n samples splits into a head and parts
// that tile it, and that every run of samples decodes by itself to what the
// whole payload decodes to, bit for bit.
func checkSplit(t *testing.T, c Codec, p []byte, n int) {
	t.Helper()
	sp, ok := c.(Splitter)
	if !ok {
		t.Skipf("%s does not implement Splitter", c.Name())
	}
	head, parts, err := sp.Split(p, n)
	if err != nil {
		t.Fatal(err)
	}
	if len(parts) != n {
		t.Fatalf("%d parts for %d samples", len(parts), n)
	}
	total := head
	for _, x := range parts {
		total += x
	}
	if total != len(p) {
		t.Fatalf("head %d and parts %v cover %d of %d bytes", head, parts, total, len(p))
	}
	vs := c.Layout().Values()
	whole := make([]float32, n*vs)
	if err := c.Decode(whole, p, n); err != nil {
		t.Fatal(err)
	}
	for a := range n {
		for b := a + 1; b <= n; b++ {
			got := make([]float32, (b-a)*vs)
			if err := c.Decode(got, splitPayload(p, head, parts, a, b), b-a); err != nil {
				t.Fatalf("samples [%d, %d): %v", a, b, err)
			}
			for i, v := range got {
				if math.Float32bits(v) != math.Float32bits(whole[a*vs+i]) {
					t.Fatalf("samples [%d, %d): value %d is %g, the whole payload's %g", a, b, i, v, whole[a*vs+i])
				}
			}
		}
	}
}

func TestSplit(t *testing.T) {
	for _, name := range []string{"fp16", "int8", "fp8", "int4"} {
		spec, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range testLayouts {
			t.Run(name, func(t *testing.T) {
				const n = 5
				c, err := spec.New(l, nil, 0, Options{})
				if err != nil {
					t.Fatal(err)
				}
				p, err := c.Encode(nil, synthTokens(l, n, 11), n)
				if err != nil {
					t.Fatal(err)
				}
				checkSplit(t, c, p, n)
			})
		}
	}
}

// fp16V1 encodes src as the fp16 codec's payload version 1 did: one zstd
// frame of all the chunk's low bytes, then all its high bytes.
func fp16V1(t testing.TB, src []float32) []byte {
	t.Helper()
	raw := make([]byte, 2*len(src))
	for i, v := range src {
		h := f16.FromFloat32(v)
		raw[i], raw[len(src)+i] = byte(h), byte(h>>8)
	}
	p, err := zstdCompress(nil, raw)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// Payload version 1 of the fp16 codec, written before samples had frames of
// their own, still decodes and stages; it does not split.
func TestFP16PayloadV1(t *testing.T) {
	l := testLayouts[1]
	const n = 3
	src := synthTokens(l, n, 5)
	c, err := newFP16(l)
	if err != nil {
		t.Fatal(err)
	}
	v1 := fp16V1(t, src)
	v2, err := c.Encode(nil, src, n)
	if err != nil {
		t.Fatal(err)
	}
	if v2[0] != fp16Version || v1[0] == fp16Version {
		t.Fatalf("version bytes %#x %#x", v1[0], v2[0])
	}
	a, b := make([]float32, n*l.Values()), make([]float32, n*l.Values())
	if err := c.Decode(a, v1, n); err != nil {
		t.Fatal(err)
	}
	if err := c.Decode(b, v2, n); err != nil {
		t.Fatal(err)
	}
	for i := range a {
		if math.Float32bits(a[i]) != math.Float32bits(b[i]) || a[i] != f16.ToFloat32(f16.FromFloat32(src[i])) {
			t.Fatalf("value %d: v1 %g, v2 %g, input %g", i, a[i], b[i], src[i])
		}
	}
	if _, _, err := c.Split(v1, n); !errors.Is(err, ErrCorrupt) {
		t.Errorf("Split of a version 1 payload: %v", err)
	}
	s1, s2 := make([]byte, 2*n*l.Values()), make([]byte, 2*n*l.Values())
	if _, err := c.Stage(s1, v1, n, StageAuto); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Stage(s2, v2, n, StageAuto); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(s1, s2) {
		t.Error("versions 1 and 2 stage to different bytes")
	}
}

// FuzzSplit decodes and splits arbitrary payloads with the codecs that have
// no model. Neither may panic; a payload that Split accepts has parts that
// tile it, and one that also decodes decodes the same way sample by sample.
func FuzzSplit(f *testing.F) {
	l := testLayouts[2]
	var cs []Codec
	for i, name := range []string{"fp16", "int8", "fp8", "int4"} {
		spec, err := Lookup(name)
		if err != nil {
			f.Fatal(err)
		}
		c, err := spec.New(l, nil, 0, Options{})
		if err != nil {
			f.Fatal(err)
		}
		cs = append(cs, c)
		p, _ := c.Encode(nil, synthTokens(l, 2, 3), 2)
		f.Add(p, uint8(i), uint8(2))
		f.Add(p[:len(p)/2], uint8(i), uint8(2))
	}
	f.Add(fp16V1(f, synthTokens(l, 1, 4)), uint8(0), uint8(1))
	f.Fuzz(func(t *testing.T, payload []byte, which, n uint8) {
		c := cs[int(which)%len(cs)]
		m := int(n%4) + 1
		vs := l.Values()
		whole := make([]float32, m*vs)
		errD := c.Decode(whole, payload, m)
		if errD != nil && !errors.Is(errD, ErrCorrupt) {
			t.Fatalf("unexpected error class: %v", errD)
		}
		head, parts, err := c.(Splitter).Split(payload, m)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		total := head
		for _, x := range parts {
			total += x
		}
		if len(parts) != m || total != len(payload) {
			t.Fatalf("head %d parts %v of a %d-byte payload", head, parts, len(payload))
		}
		if errD != nil {
			return
		}
		for s := range m {
			got := make([]float32, vs)
			if err := c.Decode(got, splitPayload(payload, head, parts, s, s+1), 1); err != nil {
				t.Fatalf("sample %d: %v", s, err)
			}
			for i, v := range got {
				if math.Float32bits(v) != math.Float32bits(whole[s*vs+i]) {
					t.Fatalf("sample %d value %d: %g, whole %g", s, i, v, whole[s*vs+i])
				}
			}
		}
	})
}
