package codec

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/ntc-project/ntc/internal/f16"
)

// An orthonormal basis of K rows in D dimensions has K(2D-K-1)/2 degrees
// of freedom, not K*D: model version 9 stores it as the vectors of K
// Householder reflections, about half the bytes of its rows. Row j of the
// basis is column j of H_0 H_1 ... H_{K-1} [I_K; 0], where
// H_j = I - tau_j v_j v_j^T reflects in rows j..D-1: v_j[i] = 0 for i < j,
// v_j[j] = 1 (not stored), v_j[j+1..D-1] stored as int8 codes with a
// float16 scale (value = float32(code) * scale, as for int8 rows), and
// tau_j = 2 / (v_j . v_j), so that every H_j is exactly a reflection
// whatever the codes: the decoded basis is orthonormal (to float64
// rounding) and the decoder's transpose inverts the encoder's projection
// exactly. Rows j' > j do not change row j, so the first k vectors of a
// model give its first k rows.

// hhEntries returns the stored entries of vector j of a basis in d
// dimensions: d-1-j.
func hhEntries(d, j int) int { return d - 1 - j }

// hhBytes returns the bytes of the first k vectors of a basis in d
// dimensions whose codes have widths bits (k bytes): the widths, then for
// each vector a float16 scale and its codes, packed.
func hhBytes(d int, bits []uint8) int {
	n := len(bits)
	for j, b := range bits {
		n += 2 + (hhEntries(d, j)*int(b)+7)/8
	}
	return n
}

// hhMaxCode returns the largest code magnitude of a width.
func hhMaxCode(bits uint8) int32 { return 1<<(bits-1) - 1 }

// hhVector returns vector j (d values, v[j] = 1) from its codes (row j of
// bq, entries j+1..d-1) and scale.
func hhVector(v []float64, bq []int8, scale uint16, j int) {
	sc := f16.ToFloat32(scale)
	clear(v[:j])
	v[j] = 1
	for i := j + 1; i < len(v); i++ {
		v[i] = float64(float32(bq[i]) * sc)
	}
}

// hhTau returns 2 / (v . v) over entries j.. of v.
func hhTau(v []float64, j int) float64 {
	var s float64
	for _, x := range v[j:] {
		s += float64(x * x)
	}
	return 2 / s
}

// hhReflect applies H = I - tau v v^T (v zero below j) to row m.
func hhReflect(m, v []float64, tau float64, j int) {
	var s float64
	for i := j; i < len(v); i++ {
		s += float64(v[i] * m[i])
	}
	t := float64(tau * s)
	for i := j; i < len(v); i++ {
		m[i] -= float64(t * v[i])
	}
}

// hhBasis returns the k x d basis rows (float32) of the Householder
// vectors held in bq (k x d codes, row j's entries j+1..d-1) and scales.
func hhBasis(bq []int8, scales []uint16, k, d int) []float32 {
	rows := make([]float64, k*d)
	for c := range k {
		rows[c*d+c] = 1
	}
	v := make([]float64, d)
	for j := k - 1; j >= 0; j-- {
		hhVector(v, bq[j*d:(j+1)*d], scales[j], j)
		tau := hhTau(v, j)
		for c := j; c < k; c++ {
			hhReflect(rows[c*d:(c+1)*d], v, tau, j)
		}
	}
	out := make([]float32, k*d)
	for i, x := range rows {
		out[i] = float32(x)
	}
	return out
}

// hhQuantize returns the int8 codes (k x d, row j's entries j+1..d-1) and
// scales of Householder vectors whose basis approximates the k orthonormal
// rows of b (k x d). Each vector is chosen after the reflections before it
// have been applied as they will be decoded, so later vectors make up for
// the rounding of earlier ones where they can.
func hhQuantize(b []float64, k, d int, bits []uint8) ([]int8, []uint16) {
	a := append([]float64(nil), b[:k*d]...)
	bq := make([]int8, k*d)
	scales := make([]uint16, k)
	v := make([]float64, d)
	for j := range k {
		x := a[j*d : (j+1)*d]
		var nn float64
		for _, e := range x[j:] {
			nn += e * e
		}
		norm := math.Sqrt(nn)
		// H x = alpha e_j with alpha = -sign(x_j) |x|; v = (x - alpha e_j)
		// / (x_j - alpha), which has v_j = 1 and |v_i| <= 1.
		den := x[j] + math.Copysign(norm, x[j])
		var amax float32
		w := make([]float32, d)
		if den != 0 {
			for i := j + 1; i < d; i++ {
				w[i] = float32(x[i] / den)
				amax = max(amax, abs32(w[i]))
			}
		}
		mc := hhMaxCode(bits[j])
		h := scaleFor(amax, float32(mc))
		scales[j] = h
		if h != 0 {
			inv := 1 / f16.ToFloat32(h)
			for i := j + 1; i < d; i++ {
				bq[j*d+i] = int8(roundClamp(w[i]*inv, mc))
			}
		}
		hhVector(v, bq[j*d:(j+1)*d], h, j)
		tau := hhTau(v, j)
		for c := j + 1; c < k; c++ {
			hhReflect(a[c*d:(c+1)*d], v, tau, j)
		}
	}
	return bq, scales
}

// hhWidths returns the code widths of the vectors of a basis whose
// components have variances lambda (descending). An error delta in vector
// j leaks component j into the others, at a cost relative to their
// variance of about delta^2 lambda_j / lambda_i, largest for the weakest
// component: vector j gets 4 + log2(lambda_j / lambda_last) / 2 bits
// (rounded up, 3 to 8), so that the leaks cost about the same for every
// vector. On the dev files this kept the SNR of all-8-bit codes (+0.03 dB
// at 8x, within noise) for 15% fewer model bytes.
func hhWidths(lambda []float64) []uint8 {
	w := make([]uint8, len(lambda))
	last := max(lambda[len(lambda)-1], 1e-30)
	for j, l := range lambda {
		b := math.Ceil(hhWidthBase + 0.5*math.Log2(max(l, 1e-30)/last))
		w[j] = uint8(max(hhWidthMin, min(8, b)))
	}
	return w
}

// hhWidthBase and hhWidthMin are the width rule's constants (see hhWidths).
const (
	hhWidthBase = 4
	hhWidthMin  = 3
)

// appendHH appends the widths and vectors (codes packed LSB first) to b.
func appendHH(b []byte, bq []int8, scales []uint16, bits []uint8, d int) []byte {
	b = append(b, bits...)
	for j, w := range bits {
		b = binary.LittleEndian.AppendUint16(b, scales[j])
		var acc uint64
		n := 0
		for _, q := range bq[j*d+j+1 : (j+1)*d] {
			acc |= uint64(uint8(q)&(1<<w-1)) << n
			n += int(w)
			for n >= 8 {
				b = append(b, byte(acc))
				acc >>= 8
				n -= 8
			}
		}
		if n > 0 {
			b = append(b, byte(acc))
		}
	}
	return b
}

// readHH reads k vectors written by appendHH from m (exactly hhBytes of
// them, their widths within 2..8, which the caller checked): their codes,
// scales and widths.
func readHH(m []byte, k, d int) ([]int8, []uint16, []uint8, error) {
	bits := append([]uint8(nil), m[:k]...)
	bq := make([]int8, k*d)
	scales := make([]uint16, k)
	p := k
	for j, w := range bits {
		h := binary.LittleEndian.Uint16(m[p:])
		if !f16.IsFinite16(h) || h&0x8000 != 0 {
			return nil, nil, nil, fmt.Errorf("%w: ntc Householder vector %d scale %#04x (byte %d)", ErrCorrupt, j, h, p)
		}
		scales[j] = h
		p += 2
		var acc uint64
		n := 0
		mc := hhMaxCode(w)
		for i := j + 1; i < d; i++ {
			for n < int(w) {
				acc |= uint64(m[p]) << n
				p++
				n += 8
			}
			v := int32(acc&(1<<w-1)) << (32 - w) >> (32 - w)
			acc >>= w
			n -= int(w)
			if v < -mc {
				return nil, nil, nil, fmt.Errorf("%w: ntc Householder vector %d code %d", ErrCorrupt, j, v)
			}
			bq[j*d+i] = int8(v)
		}
	}
	return bq, scales, bits, nil
}
