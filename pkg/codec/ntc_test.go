package codec

import (
	"bytes"
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/ntc-project/ntc/internal/knobs"
	"github.com/ntc-project/ntc/pkg/metrics"
)

var ntcTestLayouts = []Layout{
	{Tokens: 1 + 6*6, Dim: 24, Prefix: 1, GridH: 6, GridW: 6},
	{Tokens: 2 + 5*7, Dim: 19, Prefix: 2, GridH: 5, GridW: 7},
	{Tokens: 9, Dim: 16, Prefix: 0, GridH: 3, GridW: 3},
	{Tokens: 1 + 8*4, Dim: 12, Prefix: 1, GridH: 8, GridW: 4},
	{Tokens: 3, Dim: 8, Prefix: 3},
}

// encodeChunks encodes n samples in chunks and returns the payloads.
func encodeChunks(t testing.TB, c Codec, src []float32, n, chunk int) [][]byte {
	t.Helper()
	v := c.Layout().Values()
	var out [][]byte
	for s := 0; s < n; s += chunk {
		m := min(chunk, n-s)
		p, err := c.Encode(nil, src[s*v:(s+m)*v], m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func decodeChunks(t testing.TB, c Codec, ps [][]byte, n, chunk int) []float32 {
	t.Helper()
	v := c.Layout().Values()
	got := make([]float32, n*v)
	for i, p := range ps {
		s := i * chunk
		m := min(chunk, n-s)
		if err := c.Decode(got[s*v:(s+m)*v], p, m); err != nil {
			t.Fatal(err)
		}
	}
	return got
}

func TestNTCRoundTrip(t *testing.T) {
	for _, l := range ntcTestLayouts {
		const n, chunk = 40, 9
		src := synthTokens(l, n, 11)
		for _, ratio := range []float64{4, 8} {
			c, err := newNTC(l, src, n, Options{Ratio: ratio, ChunkSamples: chunk})
			if err != nil {
				t.Fatalf("%+v: %v", l, err)
			}
			ps := encodeChunks(t, c, src, n, chunk)
			c2, err := loadNTC(l, c.Model())
			if err != nil {
				t.Fatal(err)
			}
			got := decodeChunks(t, c2, ps, n, chunk)
			q := metrics.Compare(src, got, l.Dim)
			total := len(c.Model())
			for _, p := range ps {
				total += len(p)
			}
			achieved := float64(2*len(src)) / float64(total)
			t.Logf("%+v ratio %g: achieved %.2f, SNR %.1f dB, cos %.4f", l, ratio, achieved, q.SNR, q.CosMean)
			// A sample's part costs a few bytes of its own (its slice's
			// final rANS states and lengths): at 8x a 9-token, 16-dim
			// sample has 36 bytes, 11 of which that overhead takes.
			floor := 10.0
			if 2*float64(l.Values())/ratio < 64 {
				floor = 5
			}
			if q.SNR < floor || math.IsNaN(q.SNR) {
				t.Errorf("%+v ratio %g: SNR %.1f", l, ratio, q.SNR)
			}
			// Determinism: a second fit gives the same model and payloads.
			c3, err := newNTC(l, src, n, Options{Ratio: ratio, ChunkSamples: chunk})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(c3.Model(), c.Model()) {
				t.Errorf("%+v: model not deterministic", l)
			}
			for i, p := range encodeChunks(t, c3, src, n, chunk) {
				if !bytes.Equal(p, ps[i]) {
					t.Errorf("%+v: payload %d not deterministic", l, i)
				}
			}
		}
	}
}

func TestNTCRateControl(t *testing.T) {
	l := Layout{Tokens: 1 + 12*12, Dim: 64, Prefix: 1, GridH: 12, GridW: 12}
	const n, chunk = 40, 8
	src := synthTokens(l, n, 5)
	for _, ratio := range []float64{4, 8, 16} {
		c, err := newNTC(l, src, n, Options{Ratio: ratio, ChunkSamples: chunk})
		if err != nil {
			t.Fatal(err)
		}
		total := len(c.Model())
		for _, p := range encodeChunks(t, c, src, n, chunk) {
			total += len(p)
		}
		got := float64(2*len(src)) / float64(total)
		if math.Abs(got/ratio-1) > 0.03 {
			t.Errorf("ratio %g: achieved %.3f", ratio, got)
		}
	}
}

func TestNTCQuality(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 32, Prefix: 1, GridH: 8, GridW: 8}
	const n, chunk = 20, 4
	src := synthTokens(l, n, 9)
	for _, target := range []string{"snr=18", "cos=0.99"} {
		c, err := newNTC(l, src, n, Options{Quality: target, ChunkSamples: chunk})
		if err != nil {
			t.Fatal(err)
		}
		c2, err := loadNTC(l, c.Model())
		if err != nil {
			t.Fatal(err)
		}
		ps := encodeChunks(t, c2, src, n, chunk)
		got := decodeChunks(t, c2, ps, n, chunk)
		v := l.Values()
		for i := range ps {
			s := i * chunk
			m := min(chunk, n-s)
			q := metrics.Compare(src[s*v:(s+m)*v], got[s*v:(s+m)*v], l.Dim)
			if (target == "snr=18" && q.SNR < 18) || (target == "cos=0.99" && q.CosMean < 0.99) {
				t.Errorf("%s: chunk %d got SNR %.2f cos %.4f", target, i, q.SNR, q.CosMean)
			}
		}
	}
	for _, bad := range []string{"snr", "cos=2", "psnr=3", "snr=x"} {
		if _, err := newNTC(l, src, n, Options{Quality: bad}); !errors.Is(err, ErrOption) {
			t.Errorf("quality %q: %v", bad, err)
		}
	}
}

func TestNTCErrors(t *testing.T) {
	l := ntcTestLayouts[0]
	src := synthTokens(l, 4, 1)
	if _, err := newNTC(l, nil, 0, Options{}); err == nil {
		t.Error("fit without samples succeeded")
	}
	if _, err := newNTC(l, src, 4, Options{Ratio: 8, Quality: "snr=10"}); !errors.Is(err, ErrOption) {
		t.Errorf("ratio and quality: %v", err)
	}
	bad := append([]float32(nil), src...)
	bad[3] = float32(math.Inf(1))
	if _, err := newNTC(l, bad, 4, Options{}); !errors.Is(err, ErrRange) {
		t.Errorf("Inf training value: %v", err)
	}
	c, err := newNTC(l, src, 4, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Encode(nil, bad, 4); !errors.Is(err, ErrRange) {
		t.Errorf("Inf value: %v", err)
	}
	if _, err := loadNTC(Layout{Tokens: l.Tokens, Dim: l.Dim + 1, Prefix: l.Prefix, GridH: l.GridH, GridW: l.GridW}, c.Model()); !errors.Is(err, ErrCorrupt) {
		t.Errorf("model for another dim: %v", err)
	}
}

// TestNTCHostile feeds truncated and corrupted models and payloads: every
// one must give an error or a result, never a panic, and truncations must be
// reported as ErrCorrupt.
func TestNTCHostile(t *testing.T) {
	l := ntcTestLayouts[1]
	const n = 3
	src := synthTokens(l, n, 4)
	c, err := newNTC(l, src, n, Options{Ratio: 6})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Encode(nil, src, n)
	if err != nil {
		t.Fatal(err)
	}
	model := c.Model()
	got := make([]float32, len(src))
	for i := range len(p) - 1 {
		if err := c.Decode(got, p[:i], n); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("payload truncated to %d bytes: %v", i, err)
		}
	}
	for i := range len(model) - 1 {
		if _, err := loadNTC(l, model[:i]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("model truncated to %d bytes: %v", i, err)
		}
	}
	for i := range len(p) {
		for _, x := range []byte{0x01, 0x80, 0xff} {
			b := append([]byte(nil), p...)
			b[i] ^= x
			_ = c.Decode(got, b, n)
		}
	}
	for i := range len(model) {
		b := append([]byte(nil), model...)
		b[i] ^= 0xff
		if c2, err := loadNTC(l, b); err == nil {
			_ = c2.Decode(got, p, n)
		}
	}
}

func FuzzLoadModel(f *testing.F) {
	l := ntcTestLayouts[2]
	src := synthTokens(l, 4, 2)
	c, err := newNTC(l, src, 4, Options{Ratio: 5})
	if err != nil {
		f.Fatal(err)
	}
	p, _ := c.Encode(nil, src, 4)
	f.Add(c.Model())
	f.Add([]byte{})
	f.Add(c.Model()[:20])
	// Model version 7: class step codes from gradient fields.
	tm, err := FieldsTaskMetric(coherentFields(l, 3, 1), 3, l.GridH*l.GridW, l.Dim)
	if err != nil {
		f.Fatal(err)
	}
	c7, err := newNTC(l, src, 4, Options{Ratio: 5, TaskMetric: tm})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c7.Model())
	got := make([]float32, len(src))
	f.Fuzz(func(t *testing.T, model []byte) {
		c2, err := loadNTC(l, model)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrBadLayout) {
				t.Fatalf("unexpected error class: %v", err)
			}
			return
		}
		_ = c2.Decode(got, p, 4)
		_, _ = c2.Encode(nil, src, 4)
	})
}

func FuzzDecode(f *testing.F) {
	l := ntcTestLayouts[1]
	src := synthTokens(l, 2, 3)
	c, err := newNTC(l, src, 2, Options{Ratio: 6})
	if err != nil {
		f.Fatal(err)
	}
	p, _ := c.Encode(nil, src, 2)
	f.Add(p, uint8(2))
	f.Add(p[:len(p)/2], uint8(2))
	f.Add([]byte{1, 0, 0, 0, 0, 0}, uint8(1))
	// Slices of 8 and 16 rANS lanes (the encoder gives this layout's small
	// slices one).
	for _, lanes := range []int{ansLanes, ansMaxLanes} {
		knobs.ANSLanes = lanes
		p, _ := c.Encode(nil, src, 2)
		f.Add(p, uint8(2))
		f.Add(p[:len(p)-3], uint8(2))
	}
	knobs.ANSLanes = 0
	sg := c.(Stager)
	f.Fuzz(func(t *testing.T, payload []byte, n uint8) {
		m := int(n%4) + 1
		got := make([]float32, m*l.Values())
		errD := c.Decode(got, payload, m)
		if errD != nil && !errors.Is(errD, ErrCorrupt) {
			t.Fatalf("unexpected error class: %v", errD)
		}
		// Staging, and the reference of the device programs, accept what
		// Decode accepts and nothing else.
		for _, mode := range []StageMode{StageAuto, StageHostEntropy} {
			size, err := sg.StageSize(payload, m, mode)
			if err == nil {
				buf := make([]byte, size)
				var st Staged
				st, err = sg.Stage(buf, payload, m, mode)
				if errors.Is(err, ErrShortBuffer) {
					buf = make([]byte, st.Size)
					st, err = sg.Stage(buf, payload, m, mode)
				}
				if err == nil {
					err = Finish(make([]float32, m*l.Values()), l, st, buf)
				}
			}
			if (err == nil) != (errD == nil) {
				t.Fatalf("mode %d: Decode says %v, staging says %v", mode, errD, err)
			}
		}
		// A payload that decodes splits, and its first and last samples
		// decode by themselves to the same values.
		if errD != nil || payload[0] != ntcPayloadVersion {
			return
		}
		head, parts, err := c.(Splitter).Split(payload, m)
		if err != nil {
			t.Fatalf("Decode accepts the payload, Split says %v", err)
		}
		v := l.Values()
		for _, r := range [][2]int{{0, 1}, {m - 1, m}} {
			one := make([]float32, v)
			if err := c.Decode(one, ntcSub(payload, head, parts, r[0], r[1]), 1); err != nil {
				t.Fatalf("sample %d by itself: %v", r[0], err)
			}
			for i, x := range one {
				if math.Float32bits(x) != math.Float32bits(got[r[0]*v+i]) {
					t.Fatalf("sample %d by itself decodes to %g at %d, the whole payload to %g", r[0], x, i, got[r[0]*v+i])
				}
			}
		}
	})
}

// TestNTCOutliers plants a few huge tokens: they must be found, coded at
// int8 precision, and kept out of the fit.
func TestNTCOutliers(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 32, Prefix: 1, GridH: 8, GridW: 8}
	const n = 16
	src := synthTokens(l, n, 21)
	planted := []int{3*l.Tokens + 5, 7*l.Tokens + 64, 11*l.Tokens + 20}
	for _, tk := range planted {
		for d := range l.Dim {
			src[tk*l.Dim+d] *= 40
		}
	}
	c, err := newNTC(l, src, n, Options{Ratio: 8})
	if err != nil {
		t.Fatal(err)
	}
	nc := c.(*ntcCodec)
	got := nc.outliers(src, n)
	if len(got) != len(planted) {
		t.Fatalf("found outliers %v, planted %v", got, planted)
	}
	p, err := c.Encode(nil, src, n)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]float32, len(src))
	if err := c.Decode(out, p, n); err != nil {
		t.Fatal(err)
	}
	for _, tk := range planted {
		q := metrics.Compare(src[tk*l.Dim:][:l.Dim], out[tk*l.Dim:][:l.Dim], l.Dim)
		if q.CosMean < 0.9999 {
			t.Errorf("outlier token %d: cosine %.5f", tk, q.CosMean)
		}
	}
	if q := metrics.Compare(src, out, l.Dim); q.SNR < 20 {
		t.Errorf("SNR with outliers %.1f dB", q.SNR)
	}
}

// TestNTCConcurrentDecode decodes from several goroutines at once (run
// with -race): codecs are shared by the container's workers.
func TestNTCConcurrentDecode(t *testing.T) {
	l := ntcTestLayouts[0]
	const n = 6
	src := synthTokens(l, n, 31)
	c, err := newNTC(l, src, n, Options{Ratio: 6})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Encode(nil, src, n)
	if err != nil {
		t.Fatal(err)
	}
	want := make([]float32, len(src))
	if err := c.Decode(want, p, n); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 8)
	for range 8 {
		go func() {
			got := make([]float32, len(src))
			err := c.Decode(got, p, n)
			if err == nil && !slices.Equal(got, want) {
				err = errors.New("decoded values differ")
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// ntcSub returns the payload of samples [a, b) of a split payload.
func ntcSub(p []byte, head int, parts []int, a, b int) []byte {
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

// TestNTCSplit checks that a payload splits into a head and sample parts
// that tile it, that every run of samples decodes by itself to what the
// whole payload decodes to, bit for bit, with and without outliers, and
// that Split refuses what it cannot split.
func TestNTCSplit(t *testing.T) {
	l := Layout{Tokens: 1 + 8*8, Dim: 32, Prefix: 1, GridH: 8, GridW: 8}
	const n = 6
	src := synthTokens(l, n, 41)
	for d := range l.Dim { // an outlier in sample 2
		src[(2*l.Tokens+9)*l.Dim+d] *= 40
	}
	for _, layout := range append([]Layout{l}, ntcTestLayouts...) {
		src := src
		if layout != l {
			src = synthTokens(layout, n, 42)
		}
		c, err := newNTC(layout, src, n, Options{Ratio: 6})
		if err != nil {
			t.Fatal(err)
		}
		p, err := c.Encode(nil, src, n)
		if err != nil {
			t.Fatal(err)
		}
		head, parts, err := c.(Splitter).Split(p, n)
		if err != nil {
			t.Fatalf("%+v: %v", layout, err)
		}
		total := head
		for _, x := range parts {
			total += x
		}
		if len(parts) != n || total != len(p) {
			t.Fatalf("%+v: head %d and parts %v cover %d of %d bytes", layout, head, parts, total, len(p))
		}
		v := layout.Values()
		whole := make([]float32, n*v)
		if err := c.Decode(whole, p, n); err != nil {
			t.Fatal(err)
		}
		for a := range n {
			for b := a + 1; b <= n; b++ {
				got := make([]float32, (b-a)*v)
				if err := c.Decode(got, ntcSub(p, head, parts, a, b), b-a); err != nil {
					t.Fatalf("%+v: samples [%d, %d): %v", layout, a, b, err)
				}
				for i, x := range got {
					if math.Float32bits(x) != math.Float32bits(whole[a*v+i]) {
						t.Fatalf("%+v: samples [%d, %d): value %d is %g, the whole payload gives %g", layout, a, b, i, x, whole[a*v+i])
					}
				}
			}
		}
		// Truncated or extended payloads and other sample counts do not
		// split.
		for _, bad := range [][]byte{p[:len(p)-1], append(slices.Clone(p), 0), p[:head], p[:1], append([]byte{5}, p[1:]...)} {
			if _, _, err := c.(Splitter).Split(bad, n); !errors.Is(err, ErrCorrupt) {
				t.Errorf("%+v: split of %d bytes: %v", layout, len(bad), err)
			}
		}
		if _, _, err := c.(Splitter).Split(p, n+1); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%+v: split for %d samples: %v", layout, n+1, err)
		}
	}
}
