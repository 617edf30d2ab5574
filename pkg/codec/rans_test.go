package codec

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ntc-project/ntc/internal/cpufeat"
	"github.com/ntc-project/ntc/internal/knobs"
)

// TestRANSReciprocal checks the encoder's division by multiplication.
func TestRANSReciprocal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for f := uint64(2); f <= ansM; f++ {
		m := (1<<64-1)/f + 1
		for i := range 2000 {
			x := r.Uint32()
			switch i {
			case 0:
				x = 0
			case 1:
				x = 1<<32 - 1
			case 2:
				x = uint32(f*(uint64(1<<32-1)/f) - 1)
			}
			if hi, _ := bits.Mul64(uint64(x), m); uint32(hi) != x/uint32(f) {
				t.Fatalf("%d / %d: got %d", x, f, hi)
			}
		}
	}
}

// TestAliasTables checks the alias tables of random frequency tables:
// every slot decodes to a symbol and a rank below its frequency, each
// (symbol, rank) pair once, and the encoder's slot of every pair is the
// slot that decodes to it.
func TestAliasTables(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for trial := range 300 {
		var w [ansSyms]float64
		for s := range w {
			switch trial % 3 {
			case 0:
				w[s] = r.Float64()
			case 1:
				w[s] = math.Exp(-float64(s%ansEsc) * (0.2 + 3*r.Float64()))
			default:
				w[s] = 0
			}
		}
		sym := trial%2 == 0
		if sym {
			for m := 1; m < ansEsc; m++ {
				w[ansEsc+m] = w[m]
			}
		} else {
			w[r.IntN(ansSyms)] += 1
		}
		w[0] += 0.5
		tab := normalizeANS(&w, sym)
		if sym && !tab.symmetric() {
			t.Fatalf("trial %d: table %v is not symmetric", trial, tab.freq)
		}
		p, a, slots := aliasEntries(&tab.freq)
		seen := map[[2]uint32]bool{}
		var cum [ansSyms + 1]uint32
		for s, f := range tab.freq {
			if f == 0 {
				t.Fatalf("trial %d: symbol %d has frequency 0", trial, s)
			}
			cum[s+1] = cum[s] + uint32(f)
		}
		if cum[ansSyms] != ansM {
			t.Fatalf("frequencies sum to %d", cum[ansSyms])
		}
		for slot := range uint32(ansM) {
			i, lo := slot/ansWidth, slot%ansWidth
			e := p[i]
			bias := uint32(0)
			if lo > e>>12&(ansWidth-1) {
				e = a[i]
				bias = e >> 12
			}
			sym, f := e>>24&31, e&(ansM-1)
			rank := (lo + bias) & (ansM - 1)
			if f != uint32(tab.freq[sym]) || rank >= f || seen[[2]uint32{sym, rank}] {
				t.Fatalf("trial %d slot %d: symbol %d freq %d (table %d) rank %d", trial, slot, sym, f, tab.freq[sym], rank)
			}
			seen[[2]uint32{sym, rank}] = true
			if got := slots[cum[sym]+rank]; uint32(got) != slot {
				t.Fatalf("trial %d: the encoder puts symbol %d rank %d at slot %d, it decodes at %d", trial, sym, rank, got, slot)
			}
		}
	}
}

// TestANSRoundTrip codes random magnitudes, with escapes and low bits,
// through the version 6 slice encoder and decoder, with 1 to 16 lanes,
// and checks the decoded reconstruction levels.
func TestANSRoundTrip(t *testing.T) {
	for _, pb := range []int{ansPlainBucket8, ansPlainBucket} {
		testANSRoundTrip(t, pb)
	}
}

// testANSRoundTrip is TestANSRoundTrip with pb the first plain bucket.
func testANSRoundTrip(t *testing.T, pb int) {
	var hist [ntcBuckets][2][ansSyms]float64
	hist[3][0][0], hist[3][0][1], hist[3][1][2] = 100, 30, 5
	hist[40][1][5] = 10
	tabs, _, _ := fitANSTables(&hist, pb)
	enc := encTablesOf(&tabs)
	dec := newANSDecTables(&tabs)
	r := rand.New(rand.NewPCG(7, 8))
	const K = 1
	pl := []planEntry{{u: 0, bucket: 3}, {u: 1, bucket: 40}, {u: 2, bucket: 20}, {u: 3, bucket: 55}, {u: 4, bucket: 0}}
	for i := range pl {
		pl[i].shift = ansLowBits(int(pl[i].bucket), pb)
	}
	const blocks = 37
	sym := make([]int32, blocks*len(pl))
	for i := range sym {
		v := int32(r.IntN(5)) - 2
		if i%17 == 0 {
			v = int32(r.IntN(100000)) - 50000
		}
		sym[i] = v
	}
	idx := make([][]int32, blocks)
	for i := range idx {
		idx[i] = []int32{0, 1, 2, 3, 4}[:1+i%5]
		for _, j := range idx[i] {
			_ = j
		}
	}
	// Entries absent from a block are not coded: zero them.
	for b := range blocks {
		for i := len(idx[b]); i < len(pl); i++ {
			sym[b*len(pl)+i] = 0
		}
	}
	var recon [ansReconSize]float32
	for _, lanes := range []int{1, 2, 4, ansLanes, 12, ansMaxLanes} {
		for _, spp := range []int{1, 3} {
			var e sliceEncoder
			p := e.encodeSlices(nil, pl, pb, sym, idx, blocks, spp, lanes, enc)
			// The levels the decoder must give.
			want := make([]int32, len(sym))
			walkSymbols(pl, pb, sym, idx, blocks, 1, spp, lanes, func(_, bi int, pe *planEntry, q uint32, v int32) {
				m := abs32i(v)
				lev := int32(0)
				if m != 0 {
					lev = 2*m - int32(q)
					if ansPlain(int(pe.bucket), pb) {
						lev = m
					}
				}
				if v < 0 {
					lev = -lev
				}
				want[bi*len(pl)+int(pe.u)] = lev
			})
			lens := make([]int, 2*spp)
			pos := 0
			for i := range lens {
				v, k := binary.Uvarint(p[pos:])
				lens[i], pos = int(v), pos+k
			}
			q := make([]int32, len(pl))
			for si := range spp {
				rl, bl := lens[2*si], lens[2*si+1]
				rs := append(append([]byte(nil), p[pos:pos+rl]...), make([]byte, ansPad)...)
				bs := append(append([]byte(nil), p[pos+rl:pos+rl+bl]...), make([]byte, ansPad)...)
				pos += rl + bl
				var d sliceDecoder
				if err := d.init(rs, bs, lanes); err != nil {
					t.Fatal(err)
				}
				for b := si * blocks / spp; b < (si+1)*blocks/spp; b++ {
					ents := decEntries6(pl, idx[b], K, pb)
					if err := d.decodeBlock6(dec, &recon, &ents, q, nil, 1); err != nil {
						t.Fatal(err)
					}
					for i := range ents.tab {
						if got, w := q[i], want[b*len(pl)+i]; got != w {
							t.Fatalf("plain from %d, lanes %d: block %d entry %d: got %d, want %d", pb, lanes, b, i, got, w)
						}
					}
				}
				if !d.done() {
					t.Fatalf("plain from %d, lanes %d: slice %d did not end cleanly", pb, lanes, si)
				}
			}
			if pos != len(p) {
				t.Fatalf("%d bytes after the slices", len(p)-pos)
			}
		}
	}
}

// TestANSVectorPaths decodes the coefficients of payloads of 1, 8 and 16
// lanes with every vector level this machine has: the AVX2 loops must give
// what the Go loops give, bit for bit, and the symbols must be those of
// the device programs' reference (refEntropy6). The layouts' blocks hold
// symbol counts that are not multiples of the lanes, so groups straddle
// blocks and slices end mid-group; a fine step gives escapes.
func TestANSVectorPaths(t *testing.T) {
	type tcase struct {
		l     Layout
		opts  Options
		scale float32
	}
	cases := []tcase{
		{ntcTestLayouts[0], Options{Ratio: 6}, 1},
		{Layout{Tokens: 1 + 12*12, Dim: 64, Prefix: 1, GridH: 12, GridW: 12}, Options{Ratio: 6}, 1},
		{Layout{Tokens: 1 + 12*12, Dim: 64, Prefix: 1, GridH: 12, GridW: 12}, Options{Quality: "snr=60"}, 1000},
	}
	defer func() { knobs.ANSLanes = 0 }()
	for _, tc := range cases {
		const n = 5
		l := tc.l
		src := synthTokens(l, n, 13)
		for i := range src {
			src[i] *= tc.scale
		}
		c, err := newNTC(l, src, n, tc.opts)
		if err != nil {
			t.Fatal(err)
		}
		nc := c.(*ntcCodec)
		for _, lanes := range []int{1, ansLanes, ansMaxLanes} {
			knobs.ANSLanes = lanes
			p, err := c.Encode(nil, src, n)
			if err != nil {
				t.Fatal(err)
			}
			if int(p[8]) != lanes {
				t.Fatalf("payload of %d lanes, want %d", p[8], lanes)
			}
			name := fmt.Sprintf("%+v %+v lanes %d", l, tc.opts, lanes)
			wantC, wantL := ansDecodeAt(t, nc, p, n, cpufeat.Generic)
			for _, lv := range cpufeat.Levels()[1:] {
				for _, gm := range gatherModes() {
					prev := setGatherMode(gm)
					gotC, gotL := ansDecodeAt(t, nc, p, n, lv)
					setGatherMode(prev)
					if !slices.Equal(gotL, wantL) {
						t.Fatalf("%s: level %v gather mode %d decodes other symbols than Go", name, lv, gm)
					}
					for i := range wantC {
						if math.Float32bits(gotC[i]) != math.Float32bits(wantC[i]) {
							t.Fatalf("%s: level %v gather mode %d: coefficient %d is %g, Go gives %g", name, lv, gm, i, gotC[i], wantC[i])
						}
					}
				}
			}
			// The device programs' reference decodes the same levels.
			sg := c.(Stager)
			size, err := sg.StageSize(p, n, StageAuto)
			if err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, size)
			st, err := sg.Stage(buf, p, n, StageAuto)
			if err != nil {
				t.Fatal(err)
			}
			ref, err := refEntropy6(st, buf)
			if err != nil {
				t.Fatalf("%s: reference: %v", name, err)
			}
			if !slices.Equal(ref, wantL) {
				t.Fatalf("%s: the reference decodes other symbols than Go", name)
			}
			if lanes == 1 {
				continue
			}
			// Escapes were coded.
			esc := 0
			for _, v := range wantL {
				if v >= 2*ansEsc || v <= -2*ansEsc {
					esc++
				}
			}
			if tc.scale != 1 && esc == 0 {
				t.Fatalf("%s: no escape: the case does not test them", name)
			}
		}
	}
	if len(cpufeat.Levels()) < 2 {
		t.Log("no vector level on this machine: only the Go loops ran")
	}
}

// ansDecodeAt decodes a payload's coefficients and its levels (in block
// order) at vector level lv.
func ansDecodeAt(t *testing.T, nc *ntcCodec, p []byte, n int, lv cpufeat.Level) ([]float32, []int32) {
	t.Helper()
	defer cpufeat.SetLevel(cpufeat.SetLevel(lv))
	ch, err := nc.parse(p, n)
	if err != nil {
		t.Fatal(err)
	}
	s := nc.scratch()
	per := blockSize * nc.k
	var coef []float32
	var lev []int32
	err = nc.symbols(&ch, s, func(_, bi int) []float32 {
		coef = append(coef, make([]float32, per)...)
		return coef[len(coef)-per:]
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = nc.symbols(&ch, s, func(int, int) []float32 { return nil }, func(_, _ int, q []int32) { lev = append(lev, q...) })
	if err != nil {
		t.Fatal(err)
	}
	return coef, lev
}

// TestANSLanesCorrupt damages payloads of 8 and 16 lanes: truncated,
// another lane count in the head (valid or not), a lane's final state
// changed (the lanes then do not return to their initial state), any byte
// flipped. Every vector level must answer ErrCorrupt (or, for a flipped
// byte, possibly decode), never panic, and all levels must agree.
func TestANSLanesCorrupt(t *testing.T) {
	const n = 2
	l, src, nc := smallNTC(t, n, 21)
	c := Codec(nc)
	defer func() { knobs.ANSLanes = 0 }()
	decode := func(p []byte) error {
		var first error
		for i, lv := range cpufeat.Levels() {
			for _, gm := range gatherModes() {
				prev, prevGM := cpufeat.SetLevel(lv), setGatherMode(gm)
				err := c.Decode(make([]float32, n*l.Values()), p, n)
				cpufeat.SetLevel(prev)
				setGatherMode(prevGM)
				if err != nil && !errors.Is(err, ErrCorrupt) {
					t.Fatalf("level %v gather mode %d: unexpected error class: %v", lv, gm, err)
				}
				if i == 0 {
					first = err
				} else if (err == nil) != (first == nil) {
					t.Fatalf("level %v gather mode %d says %v, Go says %v", lv, gm, err, first)
				}
			}
		}
		return first
	}
	for _, lanes := range []int{ansLanes, ansMaxLanes} {
		knobs.ANSLanes = lanes
		p, err := c.Encode(nil, src, n)
		if err != nil {
			t.Fatal(err)
		}
		if err := decode(p); err != nil {
			t.Fatalf("lanes %d: %v", lanes, err)
		}
		for cut := 0; cut < len(p); cut += 1 + len(p)/97 {
			if err := decode(p[:cut]); err == nil {
				t.Fatalf("lanes %d: payload cut at %d of %d decodes", lanes, cut, len(p))
			}
		}
		for _, other := range []byte{0, 1, 2, 7, 8, 9, 15, 16, 17, 32, 255} {
			if int(other) == lanes {
				continue
			}
			bad := slices.Clone(p)
			bad[8] = other
			if err := decode(bad); err == nil {
				t.Fatalf("lanes %d: payload with %d in its lanes byte decodes", lanes, other)
			}
		}
		ch, err := nc.parse(p, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, sl := range ch.slices {
			off := cap(p) - cap(sl.rans) // the slice's stream in p
			for _, lane := range []int{0, lanes - 1} {
				for _, delta := range []byte{1, 0x80} {
					bad := slices.Clone(p)
					bad[off+4*lane] ^= delta
					if err := decode(bad); err == nil {
						t.Fatalf("lanes %d: lane %d's state changed by %#x decodes", lanes, lane, delta)
					}
				}
			}
		}
		for i := ansLanes; i < len(p); i += 1 + len(p)/301 {
			bad := slices.Clone(p)
			bad[i] ^= 0x5a
			_ = decode(bad)
		}
	}
}

// smallNTC fits the learned codec at 6x on n synthetic samples of 12 x 12
// tokens of 64 dims and a CLS (seed seeds them): a model small enough for
// tests that encode many times.
func smallNTC(t *testing.T, n int, seed uint64) (Layout, []float32, *ntcCodec) {
	t.Helper()
	l := Layout{Tokens: 1 + 12*12, Dim: 64, Prefix: 1, GridH: 12, GridW: 12}
	src := synthTokens(l, n, seed)
	c, err := newNTC(l, src, n, Options{Ratio: 6})
	if err != nil {
		t.Fatal(err)
	}
	return l, src, c.(*ntcCodec)
}
