package codec

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"testing"
)

// TestRANSReciprocal checks the encoder's division by multiplication.
func TestRANSReciprocal(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for f := uint64(2); f <= ransM; f++ {
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

// TestRANSRoundTrip codes random symbols, with escapes and low bits,
// through the encoder and decodeBlock.
func TestRANSRoundTrip(t *testing.T) {
	var hist [ntcBuckets][ransSyms]float64
	hist[3][0], hist[3][1], hist[3][2] = 100, 30, 5
	hist[40][5] = 10
	tabs, _, _ := fitTables(&hist)
	r := rand.New(rand.NewPCG(7, 8))
	const K = 1
	pl := []planEntry{{u: 0, bucket: 3, shift: lowBits(3)}, {u: 1, bucket: 40, shift: lowBits(40)}, {u: 2, bucket: 20, shift: lowBits(20)}}
	const blocks = 500
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
		idx[i] = []int32{0, 1, 2}
	}
	const spp = (blocks + ntcSliceBlocks - 1) / ntcSliceBlocks
	p := encodeSlices(nil, pl, sym, idx, blocks, spp, &tabs, &sliceEncoder{})
	lens := make([]int, 2*spp)
	pos := 0
	for i := range lens {
		v, k := binary.Uvarint(p[pos:])
		lens[i], pos = int(v), pos+k
	}
	lut := ransLUT(tabs[:])
	ents := decEntries(pl, idx[0], K)
	q := make([]int32, len(ents))
	for si := range spp {
		rl, bl := lens[2*si], lens[2*si+1]
		rs := append(append([]byte(nil), p[pos:pos+rl]...), make([]byte, ransPad)...)
		bs := append(append([]byte(nil), p[pos+rl:pos+rl+bl]...), make([]byte, ransPad)...)
		pos += rl + bl
		var d ransDecoder
		if err := d.init(rs, bs); err != nil {
			t.Fatal(err)
		}
		for b := si * blocks / spp; b < (si+1)*blocks/spp; b++ {
			if err := d.decodeBlock(lut, ents, q, nil, nil, 1); err != nil {
				t.Fatal(err)
			}
			for i := range pl {
				if got, want := q[i], sym[b*len(pl)+i]; got != want {
					t.Fatalf("block %d entry %d: got %d, want %d", b, i, got, want)
				}
			}
		}
		if d.x0 != ransL || d.x1 != ransL || d.pos != d.end {
			t.Fatalf("slice %d did not end cleanly: %d %d %d/%d", si, d.x0, d.x1, d.pos, d.end)
		}
	}
	if pos != len(p) {
		t.Fatalf("%d bytes after the slices", len(p)-pos)
	}
}
