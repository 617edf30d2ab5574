package tensorio

import (
	"encoding/binary"
	"math"
	"os"
	"slices"
	"testing"
)

// realTokens is a DeiT-tiny token dump shared by the project, when present.
const realTokens = "/work/shared/data/tokens/deit_tiny_final_dev.npy"

// halfToFloat decodes an IEEE binary16 bit pattern arithmetically,
// independently of the f16 package's table.
func halfToFloat(h uint16) float64 {
	sign := 1.0
	if h&0x8000 != 0 {
		sign = -1
	}
	exp := int(h>>10) & 0x1f
	man := float64(h & 0x3ff)
	switch exp {
	case 0:
		return sign * math.Ldexp(man, -24)
	case 0x1f:
		if man != 0 {
			return math.NaN()
		}
		return sign * math.Inf(1)
	}
	return sign * math.Ldexp(1+man/1024, exp-15)
}

func TestRealFile(t *testing.T) {
	raw, err := os.ReadFile(realTokens)
	if err != nil {
		t.Skip("shared token dump not present:", err)
	}
	s, err := Open(realTokens)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.DType() != Float16 || !slices.Equal(s.Shape(), []int{192, 197, 192}) || !s.Batched() {
		t.Fatalf("dtype %v shape %v batched %v, want float16 [192 197 192] true", s.DType(), s.Shape(), s.Batched())
	}
	// The file was written by numpy: its header is what Create writes.
	hdr := npyHeaderBytes(Float16, s.Shape())
	if string(raw[:len(hdr)]) != string(hdr) {
		t.Errorf("numpy header\n%q, Create would write\n%q", raw[:len(hdr)], hdr)
	}
	const per = 197 * 192
	dst := make([]float32, per)
	for _, i := range []int{0, 1, 100, 191, 7} {
		if err := s.ReadSample(i, dst); err != nil {
			t.Fatal(err)
		}
		for _, j := range []int{0, 1, 2, 191, 192, per / 2, per - 1} {
			off := len(hdr) + 2*(i*per+j)
			want := halfToFloat(binary.LittleEndian.Uint16(raw[off:]))
			if float64(dst[j]) != want {
				t.Errorf("sample %d value %d = %v, want %v", i, j, dst[j], want)
			}
		}
	}
}
