package codec

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/f16"
	"gonum.org/v1/gonum/mat"
)

// randomOrthonormal returns k orthonormal rows in d dimensions.
func randomOrthonormal(rng *rand.Rand, k, d int) []float64 {
	a := mat.NewDense(d, d, nil)
	for i := range d {
		for j := range d {
			a.Set(i, j, rng.NormFloat64())
		}
	}
	var qr mat.QR
	qr.Factorize(a)
	var q mat.Dense
	qr.QTo(&q)
	b := make([]float64, k*d)
	for r := range k {
		for c := range d {
			b[r*d+c] = q.At(c, r)
		}
	}
	return b
}

// TestHouseholderBasis checks that the decoded basis is orthonormal and
// as close to the rows it codes as int8 rows would be, in half the bytes.
func TestHouseholderBasis(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, kd := range [][2]int{{192, 192}, {64, 192}, {1, 5}, {7, 7}} {
		k, d := kd[0], kd[1]
		b := randomOrthonormal(rng, k, d)
		bits := make([]uint8, k)
		for j := range bits {
			bits[j] = 8
		}
		bq, sc := hhQuantize(b, k, d, bits)
		got := hhBasis(bq, sc, k, d)
		var orth, herr, rerr float64
		for r := range k {
			for s := range k {
				var dot float64
				for i := range d {
					dot += float64(got[r*d+i]) * float64(got[s*d+i])
				}
				if r == s {
					dot--
				}
				orth = max(orth, math.Abs(dot))
			}
			var dot float64
			for i := range d {
				dot += float64(got[r*d+i]) * b[r*d+i]
			}
			sgn := math.Copysign(1, dot)
			var amax float64
			for i := range d {
				e := float64(got[r*d+i]) - sgn*b[r*d+i]
				herr += e * e
				amax = max(amax, math.Abs(b[r*d+i]))
			}
			// int8 rows with a float16 scale, as model version 8 stores them.
			h := scaleFor(float32(amax), 127)
			s := f16.ToFloat32(h)
			for i := range d {
				q := roundClamp(float32(b[r*d+i])/s, 127)
				e := float64(float32(q)*s) - b[r*d+i]
				rerr += e * e
			}
		}
		t.Logf("k=%d d=%d: orthonormal to %.2g; squared error %.3g (int8 rows %.3g); %d bytes (rows %d)",
			k, d, orth, herr/float64(k), rerr/float64(k), hhBytes(d, bits), k*(2+d))
		if orth > 1e-6 {
			t.Errorf("k=%d d=%d: basis orthonormal only to %g", k, d, orth)
		}
		if herr > 2*rerr+1e-12 {
			t.Errorf("k=%d d=%d: squared error %g, int8 rows %g", k, d, herr, rerr)
		}
		// The first rows of a truncated basis are the same rows.
		if k > 1 {
			sub := hhBasis(bq[:(k/2)*d], sc[:k/2], k/2, d)
			for i, v := range sub {
				if v != got[i] {
					t.Fatalf("k=%d d=%d: truncated basis differs at %d", k, d, i)
				}
			}
		}
	}
}

// TestHouseholderModelRejects checks that a plain fit writes its basis as
// Householder vectors (flags bit 1) and that a model whose vectors are
// damaged is refused with ErrCorrupt naming the problem: a width out of
// range, a scale negative or not finite, a code of the one value a width
// has without its negation, float16 rows beside the vectors, the flag on
// version 8 or cleared.
func TestHouseholderModelRejects(t *testing.T) {
	l := ntcTestLayouts[0]
	const n = 8
	src := synthTokens(l, n, 2)
	c, err := newNTC(l, src, n, Options{Ratio: 5})
	if err != nil {
		t.Fatal(err)
	}
	nc := c.(*ntcCodec)
	m := c.Model()
	if m[0] != ntcModelVersion || m[1] != ntcFlagHouseholder || !nc.hh || len(nc.hbits) != nc.k {
		t.Fatalf("model version %d flags %d, %d widths for %d components", m[0], m[1], len(nc.hbits), nc.k)
	}
	at := ntcModelHeader + 2*l.Dim + 2*l.Prefix*l.Dim // the widths
	first := at + nc.k + 2                            // vector 0's first code
	w := m[at]
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want string
	}{
		{"width 1", func(b []byte) []byte { b[at+1] = 1; return b }, "vector 1 has 1-bit codes"},
		{"width 9", func(b []byte) []byte { b[at] = 9; return b }, "vector 0 has 9-bit codes"},
		// A valid width that does not match the codes moves what follows:
		// the table range or the length check refuses the model.
		{"width 2", func(b []byte) []byte { b[at] = 2; return b }, "ntc "},
		{"negative scale", func(b []byte) []byte { b[at+nc.k+1] |= 0x80; return b }, "vector 0 scale"},
		{"infinite scale", func(b []byte) []byte { b[at+nc.k], b[at+nc.k+1] = 0, 0x7c; return b }, "vector 0 scale"},
		{"code -2^(w-1)", func(b []byte) []byte {
			b[first] = b[first]&^(1<<w-1) | 1<<(w-1)
			return b
		}, fmt.Sprintf("vector 0 code %d", -1<<(w-1))},
		{"float16 rows", func(b []byte) []byte { b[16] = 1; return b }, "Householder basis and 1 float16 rows"},
		{"version 8", func(b []byte) []byte { b[0] = 8; return b }, "version 8 flags 2"},
		{"flag cleared", func(b []byte) []byte { b[1] = 0; return b }, "want"},
		{"truncated", func(b []byte) []byte { return b[:at+3] }, "want"},
	} {
		_, err := loadNTC(l, tc.edit(append([]byte(nil), m...)))
		if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
	// The model reloads to the same basis, bit for bit.
	c2, err := loadNTC(l, m)
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range c2.(*ntcCodec).basis {
		if math.Float32bits(v) != math.Float32bits(nc.basis[i]) {
			t.Fatalf("reloaded basis value %d: %g, want %g", i, v, nc.basis[i])
		}
	}
}
