package codec

import (
	"errors"
	"math"
	"testing"
)

// refFinish runs the reference device program on a staged chunk.
func refFinish(t testing.TB, l Layout, st Staged, data []byte) []float32 {
	t.Helper()
	out := make([]float32, st.N*l.Values())
	if err := Finish(out, l, st, data); err != nil {
		t.Fatal(err)
	}
	return out
}

// relErr returns the norm of a-b over the norm of b, over all values.
func relErr(a, b []float32) float64 {
	var num, den float64
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		num += d * d
		den += float64(b[i]) * float64(b[i])
	}
	if den == 0 {
		return math.Sqrt(num)
	}
	return math.Sqrt(num / den)
}

// stageAndFinish stages every payload and runs the reference device
// program on it.
func stageAndFinish(t *testing.T, c Codec, ps [][]byte, n, chunk int, mode StageMode) ([]float32, int) {
	t.Helper()
	sg, ok := c.(Stager)
	if !ok {
		t.Fatalf("%s does not implement Stager", c.Name())
	}
	v := c.Layout().Values()
	got := make([]float32, n*v)
	exc := 0
	for i, p := range ps {
		s := i * chunk
		m := min(chunk, n-s)
		size, err := sg.StageSize(p, m, mode)
		if err != nil {
			t.Fatal(err)
		}
		// Garbage in the buffer must not leak into the result.
		buf := make([]byte, size+7)
		for j := range buf {
			buf[j] = byte(j*131 + 7)
		}
		st, err := sg.Stage(buf, p, m, mode)
		if errors.Is(err, ErrShortBuffer) {
			if st.Size <= len(buf) {
				t.Fatalf("short buffer of %d bytes, but staging asks for %d", len(buf), st.Size)
			}
			buf = make([]byte, st.Size)
			st, err = sg.Stage(buf, p, m, mode)
		}
		if err != nil {
			t.Fatal(err)
		}
		if st.Size < size || st.Size > len(buf) || st.N != m {
			t.Fatalf("staged %d bytes for %d samples, bound %d", st.Size, st.N, size)
		}
		exc += st.NTC.Exceptions
		copy(got[s*v:], refFinish(t, c.Layout(), st, buf))
	}
	return got, exc
}

func TestStageFixedExact(t *testing.T) {
	for _, name := range []string{"fp16", "int8", "fp8", "int4"} {
		for _, l := range ntcTestLayouts {
			const n, chunk = 7, 3
			src := synthTokens(l, n, 3)
			spec, _ := Lookup(name)
			c, err := spec.New(l, nil, 0, Options{})
			if err != nil {
				t.Fatal(err)
			}
			ps := encodeChunks(t, c, src, n, chunk)
			want := decodeChunks(t, c, ps, n, chunk)
			got, _ := stageAndFinish(t, c, ps, n, chunk, StageAuto)
			for i := range want {
				if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
					t.Fatalf("%s %+v: value %d: staged %g, Decode %g", name, l, i, got[i], want[i])
				}
			}
		}
	}
}

// stageLayouts add to the codec's test layouts grids of several blocks per
// group side, where the DCT matrices are not symmetric.
var stageLayouts = append([]Layout{
	{Tokens: 1 + 14*14, Dim: 16, Prefix: 1, GridH: 14, GridW: 14},
	{Tokens: 13 * 11, Dim: 8, GridH: 13, GridW: 11},
	{Tokens: 4 + 24*20, Dim: 12, Prefix: 4, GridH: 24, GridW: 20},
}, ntcTestLayouts...)

func TestStageNTC(t *testing.T) {
	for _, l := range stageLayouts {
		const n, chunk = 20, 7
		src := synthTokens(l, n, 5)
		for _, ratio := range []float64{2, 8, 16} {
			c, err := newNTC(l, src, n, Options{Ratio: ratio, ChunkSamples: chunk})
			if err != nil {
				t.Fatal(err)
			}
			ps := encodeChunks(t, c, src, n, chunk)
			want := decodeChunks(t, c, ps, n, chunk)
			for _, mode := range []StageMode{StageAuto, StageHostEntropy} {
				got, exc := stageAndFinish(t, c, ps, n, chunk, mode)
				t.Logf("%+v %gx mode %d: rel err %.3g, %d exceptions", l, ratio, mode, relErr(got, want), exc)
				// float16 inputs to the product: errors of a few 1e-4.
				if e := relErr(got, want); e > 1e-3 {
					t.Errorf("%+v at %gx, mode %d: staged decode differs from Decode by %.2g (relative)", l, ratio, mode, e)
				}
			}
		}
	}
}

func TestStageNTCExceptions(t *testing.T) {
	// A fine step makes symbols beyond int16.
	l := ntcTestLayouts[0]
	const n = 6
	src := synthTokens(l, n, 9)
	for i := range src {
		src[i] *= 1000
	}
	c, err := newNTC(l, src, n, Options{Quality: "snr=80"})
	if err != nil {
		t.Fatal(err)
	}
	ps := encodeChunks(t, c, src, n, n)
	want := decodeChunks(t, c, ps, n, n)
	got, exc := stageAndFinish(t, c, ps, n, n, StageHostEntropy)
	if exc == 0 {
		t.Fatal("no symbol beyond int16: the test does not test exceptions")
	}
	if e := relErr(got, want); e > 1e-3 {
		t.Errorf("staged decode with %d exceptions differs from Decode by %.2g", exc, e)
	}
}

func TestStageRejects(t *testing.T) {
	l := ntcTestLayouts[1]
	const n = 5
	src := synthTokens(l, n, 2)
	c, err := newNTC(l, src, n, Options{Ratio: 8})
	if err != nil {
		t.Fatal(err)
	}
	p := encodeChunks(t, c, src, n, n)[0]
	sg := c.(Stager)
	// Every payload Decode rejects, staging with the host's entropy
	// decoding rejects; staging for the device's rejects all but those
	// whose coefficient streams are bad, which the device reports, and
	// refEntropy, its reference, rejects them all.
	for _, mode := range []StageMode{StageHostEntropy, StageAuto} {
		size, err := sg.StageSize(p, n, mode)
		if err != nil {
			t.Fatal(err)
		}
		for i := range len(p) {
			bad := append([]byte(nil), p...)
			bad[i] ^= 0x5a
			errD := c.Decode(make([]float32, n*l.Values()), bad, n)
			var errS error
			if sz, err := sg.StageSize(bad, n, mode); err != nil {
				errS = err
			} else {
				buf := make([]byte, sz)
				var st Staged
				if st, errS = sg.Stage(buf, bad, n, mode); errS == nil {
					errS = Finish(make([]float32, n*l.Values()), l, st, buf)
				}
			}
			if (errD == nil) != (errS == nil) {
				t.Fatalf("mode %d, byte %d flipped: Decode says %v, staging says %v", mode, i, errD, errS)
			}
		}
		if _, err := sg.Stage(make([]byte, size-1), p, n, mode); !errors.Is(err, ErrBadLayout) {
			t.Fatalf("short buffer: %v", err)
		}
		if _, err := sg.StageSize(p[:10], n, mode); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("short payload: %v", err)
		}
	}
}

func TestStageNTCReal(t *testing.T) {
	data, n := loadShared(t, "deit_tiny_block10_dev.npy")
	n = min(n, 32)
	data = data[:n*deitLayout.Values()]
	c, err := newNTC(deitLayout, data, n, Options{Ratio: 8, ChunkSamples: 16})
	if err != nil {
		t.Fatal(err)
	}
	ps := encodeChunks(t, c, data, n, 16)
	want := decodeChunks(t, c, ps, n, 16)
	for _, mode := range []StageMode{StageAuto, StageHostEntropy} {
		got, exc := stageAndFinish(t, c, ps, n, 16, mode)
		e := relErr(got, want)
		t.Logf("block10, %d samples at 8x, mode %d: relative difference %.3g, %d exceptions", n, mode, e, exc)
		if e > 1e-3 {
			t.Errorf("staged decode (mode %d) differs from Decode by %.2g", mode, e)
		}
	}
}
