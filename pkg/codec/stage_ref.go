package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
)

// Finish runs the device program of a staged chunk on the CPU, writing
// the chunk's st.N samples into dst. It is the reference that device
// decoders follow step by step (the specification in stage.go, as code),
// not a fast path: Decode is. Like the GPU's tensor-core product, it
// rounds the learned codec's coefficient matrix and weights to float16.
func Finish(dst []float32, l Layout, st Staged, data []byte) error {
	nv := st.N * l.Values()
	if len(dst) != nv || len(data) < st.Size {
		return fmt.Errorf("%w: %d output values and %d bytes of staged data for %d samples of %d bytes", ErrBadLayout, len(dst), len(data), st.N, st.Size)
	}
	data = data[:st.Size]
	out := dst
	switch st.Kind {
	case DeviceF16:
		for i := range out {
			out[i] = f16.ToFloat32(uint16(data[i]) | uint16(data[nv+i])<<8)
		}
	case DeviceFixed:
		refFixed(out, l, st.Fixed, data)
	case DeviceNTC, DeviceNTCStreams:
		return refNTC(out, l, st, data)
	default:
		return fmt.Errorf("%w: device kind %d", ErrBadLayout, st.Kind)
	}
	return nil
}

// refFixed is the DeviceFixed program.
func refFixed(out []float32, l Layout, fd FixedDevice, data []byte) {
	for i := range out {
		tok, d := i/l.Dim, i%l.Dim
		g := d / fd.Group
		var gbytes int
		switch fd.Format {
		case FixedInt4:
			gbytes = 2 + (fd.Group+1)/2
		default:
			gbytes = 2 + fd.Group
		}
		p := 1 + tok*fd.TokenBytes + g*gbytes
		scale := f16.ToFloat32(binary.LittleEndian.Uint16(data[p:]))
		j := d - g*fd.Group
		var v float32
		switch fd.Format {
		case FixedInt8:
			v = float32(int8(data[p+2+j]))
		case FixedFP8:
			v = e4m3ToF32[data[p+2+j]]
		case FixedInt4:
			b := data[p+2+j/2]
			if j%2 == 0 {
				v = float32(int8(b<<4) >> 4)
			} else {
				v = float32(int8(b) >> 4)
			}
		}
		out[i] = v * scale
	}
}

// refNTC is the DeviceNTC and DeviceNTCStreams program.
func refNTC(out []float32, l Layout, st Staged, data []byte) error {
	m, pl := st.NTC.Model, st.NTC.Plan
	K, KP, D := m.K, m.KPad, l.Dim
	G := l.GridH * l.GridW
	step := math.Float32frombits(binary.LittleEndian.Uint32(data))
	nexc := int(binary.LittleEndian.Uint32(data[4:]))
	nrows := int(binary.LittleEndian.Uint32(data[8:]))
	coding := binary.LittleEndian.Uint32(data[12:])
	recon := func(b, j int) float32 {
		return math.Float32frombits(binary.LittleEndian.Uint32(data[16+(b*8+j)*4:]))
	}
	var symbol func(i int) int32
	if st.Kind == DeviceNTCStreams {
		entropy := refEntropy
		if coding>>8&0xff == 1 {
			entropy = refEntropy6
		}
		q, err := entropy(st, data)
		if err != nil {
			return err
		}
		symbol = func(i int) int32 { return q[i] }
	} else {
		symbol = func(i int) int32 {
			v := int32(int16(binary.LittleEndian.Uint16(data[st.NTC.QOff+2*i:])))
			if v != NTCEscape {
				return v
			}
			// Binary search of the exception list, as the kernel does.
			lo, hi := 0, nexc
			for lo < hi {
				mid := (lo + hi) / 2
				if int(binary.LittleEndian.Uint32(data[st.NTC.ExcOff+8*mid:])) < i {
					lo = mid + 1
				} else {
					hi = mid
				}
			}
			return int32(binary.LittleEndian.Uint32(data[st.NTC.ExcOff+8*lo+4:]))
		}
	}
	dct := func(n, f, p int) float32 { return m.DCT[(n*4+f)*4+p] }
	nb := len(m.Blocks) / 20
	y := make([]float32, G*KP) // one sample's coefficient matrix
	for s := range st.N {
		// Dequantize.
		coef := make([]float32, nb*blockSize*K)
		for b := 0; b < nb && pl != nil; b++ {
			sh := int(pl.Shape[b])
			if sh < 0 {
				continue
			}
			for uk := range blockSize * K {
				j := pl.Index[sh*blockSize*K+uk]
				if j < 0 {
					continue
				}
				q := symbol(s*pl.Entries + int(pl.Start[b]) + int(j))
				mag := q
				if mag < 0 {
					mag = -mag
				}
				bk := int(pl.Bucket[sh*blockSize*K+uk])
				qz, M := int32(0), mag
				if coding>>8&0xff == 1 && bk < int(coding>>16&0xff) {
					qz = mag & 1
					M = (mag + qz) >> 1
				}
				v := (float32(mag) + recon(bk, int(qz*4+min(M, 3)))) * step
				if q < 0 {
					v = -v
				}
				if m.ClassMul != nil {
					v *= m.ClassMul[b*blockSize*K+uk]
				}
				coef[b*blockSize*K+uk] = v
			}
		}
		// Inverse DCT of the DCs of every group.
		for g := range len(m.Groups) / 18 {
			gh, gw := int(m.Groups[g*18]), int(m.Groups[g*18+1])
			blk := m.Groups[g*18+2 : g*18+18]
			for k := range K {
				var dc, res [blockSize]float32
				for p := range blockSize {
					if blk[p] >= 0 {
						dc[p] = coef[int(blk[p])*blockSize*K+k]
					}
				}
				for a := range gh {
					for b := range gw {
						var v float32
						for i := range gh {
							for j := range gw {
								v += dct(gh, i, a) * dct(gw, j, b) * dc[i*4+j]
							}
						}
						res[a*4+b] = v
					}
				}
				for p := range blockSize {
					if blk[p] >= 0 {
						coef[int(blk[p])*blockSize*K+k] = res[p]
					}
				}
			}
		}
		// Inverse DCT of every block, into y rounded to float16.
		for b := range nb {
			bh, bw := int(m.Blocks[b*20]), int(m.Blocks[b*20+1])
			tok := m.Blocks[b*20+4 : b*20+20]
			for p := range blockSize {
				if tok[p] < 0 {
					continue
				}
				py, px := p/4, p%4
				row := y[int(tok[p])*KP:][:KP]
				for k := range K {
					var v float32
					for fy := range bh {
						for fx := range bw {
							v += dct(bh, fy, py) * dct(bw, fx, px) * coef[(b*blockSize+fy*4+fx)*K+k]
						}
					}
					row[k] = f16.Round(v)
				}
				row[K] = 1
			}
		}
		// The product with the weights.
		for g := range G {
			o := out[(s*l.Tokens+l.Prefix+g)*D:][:D]
			for d := range D {
				var v float32
				for k := range KP {
					v += y[g*KP+k] * f16.ToFloat32(m.Weights[k*D+d])
				}
				o[d] = v
			}
		}
	}
	// The int8 rows.
	idx := data[st.NTC.RowOff:]
	rows := data[st.NTC.RowOff+4*nrows:]
	for r := range nrows {
		tk := int(binary.LittleEndian.Uint32(idx[4*r:]))
		row := rows[r*(2+D):][:2+D]
		scale := f16.ToFloat32(binary.LittleEndian.Uint16(row))
		for d := range D {
			out[tk*D+d] = float32(int8(row[2+d])) * scale
		}
		if t := tk % l.Tokens; m.PrefixMean != nil && t < l.Prefix {
			for d := range D {
				out[tk*D+d] += f16.ToFloat32(m.PrefixMean[t*D+d])
			}
		}
	}
	return nil
}

// refEntropy is the first step of the DeviceNTCStreams program: it decodes
// every slice's symbols into an int32 array laid out as DeviceNTC's int16
// symbols. Each slice is decoded by itself, as one GPU thread does.
func refEntropy(st Staged, data []byte) ([]int32, error) {
	m, pl := st.NTC.Model, st.NTC.Plan
	le := binary.LittleEndian
	nb := len(m.Blocks) / 20
	q := make([]int32, st.N*pl.Entries)
	for si := range st.NTC.Slices {
		e := data[st.NTC.SliceOff+ntcSliceEntry*si:]
		ro, rl := int(le.Uint32(e)), int(le.Uint32(e[4:]))
		bo, bl := int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		rs := data[ro : ro+rl]
		bs := data[bo : bo+bl]
		// Reads past the end of a stream give zeros.
		word := func(p int) uint32 {
			if p+2 <= len(rs) {
				return uint32(le.Uint16(rs[p:]))
			}
			return 0
		}
		bitAt := func(p int) uint64 {
			if p < len(bs) {
				return uint64(bs[p])
			}
			return 0
		}
		x0, x1 := le.Uint32(rs), le.Uint32(rs[4:])
		pos := 8
		bp := 0 // bits consumed
		take := func(n uint) uint32 {
			var v uint64
			for i := range n {
				v |= (bitAt((bp+int(i))>>3) >> ((bp + int(i)) & 7) & 1) << i
			}
			bp += int(n)
			return uint32(v)
		}
		from, count := int(le.Uint32(e[16:])), int(le.Uint32(e[20:]))
		for gb := from; gb < min(st.N*nb, from+count); gb++ {
			smp, bi := gb/nb, gb%nb
			sh := pl.Shape[bi]
			if sh < 0 {
				continue
			}
			order := pl.Order[pl.OrderStart[sh]:pl.OrderStart[sh+1]]
			base := smp*pl.Entries + int(pl.Start[bi])
			K16 := blockSize * m.K
			for j, off := range order {
				b := uint32(pl.Bucket[int(sh)*K16+int(off)])
				v := m.LUT[b<<ransBits|x0&(ransM-1)]
				x0 = (v&0xfff)*(x0>>ransBits) + (v>>12)&0x7ff
				if x0 < ransL {
					x0 = x0<<16 | word(pos)
					pos += 2
				}
				t := v >> 23
				if t == ransEsc {
					nz := uint(0)
					for take(1) == 0 {
						if nz++; nz > 24 {
							return nil, fmt.Errorf("%w: ntc coefficient escape too long in slice %d", ErrCorrupt, si)
						}
					}
					t += (1<<nz | take(nz)) - 1
				}
				r := uint(lowBits(int(b)))
				mag := t<<r | take(r)
				qv := int32(mag)
				if mag != 0 && take(1) == 1 {
					qv = -qv
				}
				q[base+j] = qv
				x0, x1 = x1, x0
			}
		}
		if x0 != ransL || x1 != ransL || pos != len(rs) || (bp+7)/8 != len(bs) {
			return nil, fmt.Errorf("%w: ntc slice %d does not end where it should", ErrCorrupt, si)
		}
	}
	return q, nil
}

// refEntropy6 is refEntropy for version 6 chunks (payload version 6's
// coder, ans.go): the slice's L lanes take its symbols in turn, each with
// its trellis state, the alias tables of Model.LUT, then the raw bits of
// plain entries and escapes; the symbols are the signed levels.
func refEntropy6(st Staged, data []byte) ([]int32, error) {
	m, pl := st.NTC.Model, st.NTC.Plan
	le := binary.LittleEndian
	nb := len(m.Blocks) / 20
	lanes := int(le.Uint32(data[12:]) & 0xff)
	pb := le.Uint32(data[12:]) >> 16 & 0xff // the first plain bucket
	P, A := m.LUT[:ansTables], m.LUT[ansTables:]
	q := make([]int32, st.N*pl.Entries)
	for si := range st.NTC.Slices {
		e := data[st.NTC.SliceOff+ntcSliceEntry*si:]
		ro, rl := int(le.Uint32(e)), int(le.Uint32(e[4:]))
		bo, bl := int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
		rs := data[ro : ro+rl]
		bs := data[bo : bo+bl]
		// Reads past the end of a stream give zeros.
		pos := 4 * lanes
		word := func() uint32 {
			w := uint32(0)
			if pos+2 <= len(rs) {
				w = uint32(le.Uint16(rs[pos:]))
			}
			pos += 2
			return w
		}
		bp := 0 // bits consumed
		take := func(n uint) uint32 {
			var v uint32
			for i := range n {
				p := bp + int(i)
				if p>>3 < len(bs) {
					v |= uint32(bs[p>>3]>>(p&7)&1) << i
				}
			}
			bp += int(n)
			return v
		}
		eg := func() (uint32, error) {
			nz := uint(0)
			for take(1) == 0 {
				if nz++; nz > 24 {
					return 0, fmt.Errorf("%w: ntc coefficient escape too long in slice %d", ErrCorrupt, si)
				}
			}
			return (1<<nz | take(nz)) - 1, nil
		}
		x := make([]uint32, lanes)
		ts := make([]uint32, lanes)
		if len(rs) < 4*lanes {
			return nil, fmt.Errorf("%w: ntc slice %d too short", ErrCorrupt, si)
		}
		for l := range x {
			x[l] = le.Uint32(rs[4*l:])
		}
		j := 0 // the symbol's index in the slice
		from, count := int(le.Uint32(e[16:])), int(le.Uint32(e[20:]))
		for gb := from; gb < min(st.N*nb, from+count); gb++ {
			smp, bi := gb/nb, gb%nb
			sh := pl.Shape[bi]
			if sh < 0 {
				continue
			}
			order := pl.Order[pl.OrderStart[sh]:pl.OrderStart[sh+1]]
			base := smp*pl.Entries + int(pl.Start[bi])
			// The block's symbols and quantizers, then their raw bits.
			syms := make([]uint32, len(order))
			qzs := make([]uint32, len(order))
			for k, off := range order {
				b := uint32(pl.Bucket[int(sh)*blockSize*m.K+int(off)])
				l := j % lanes
				j++
				plain := b >= pb
				qz := uint32(0)
				if !plain {
					qz = ts[l] >> 1
				}
				slot := x[l] & (ansM - 1)
				i := (b*2+qz)*ansSyms + slot/ansWidth
				lo := slot % ansWidth
				part, rank := P[i], lo
				if lo > part>>12&(ansWidth-1) {
					part = A[i]
					rank = (lo + part>>12) & (ansM - 1)
				}
				x[l] = part&(ansM-1)*(x[l]>>ansBits) + rank
				if x[l] < ansL {
					x[l] = x[l]<<16 | word()
				}
				s := part >> 24 & 31
				if !plain {
					ts[l] = ansTrans >> (4*ts[l] + 2*(s&1)) & 3
				}
				syms[k], qzs[k] = s, qz
			}
			for k, off := range order {
				b := int(pl.Bucket[int(sh)*blockSize*m.K+int(off)])
				s := syms[k]
				var mag, neg uint32
				switch {
				case b >= int(pb):
					t := s
					if s == ansEscPlain {
						ex, err := eg()
						if err != nil {
							return nil, err
						}
						t += ex
					}
					r := uint(b/4 - 4)
					mag = t<<r | take(r)
					if t != 0 || r != 0 {
						neg = take(1)
					}
				case s == ansEsc:
					ex, err := eg()
					if err != nil {
						return nil, err
					}
					mag, neg = ansEsc+ex, take(1)
				default:
					mag, neg = s&15, s>>4
				}
				lev := int32(mag)
				if b < int(pb) && mag != 0 {
					lev = int32(2*mag - qzs[k])
				}
				if neg != 0 {
					lev = -lev
				}
				q[base+k] = lev
			}
		}
		for l := range x {
			if x[l] != ansL {
				return nil, fmt.Errorf("%w: ntc slice %d does not end where it should", ErrCorrupt, si)
			}
		}
		if pos != len(rs) || (bp+7)/8 != len(bs) {
			return nil, fmt.Errorf("%w: ntc slice %d does not end where it should", ErrCorrupt, si)
		}
	}
	return q, nil
}
