package codec

import (
	"fmt"
	"math"
)

// InferLayout works out the token layout of samples with the given number of
// tokens and dims. prefix < 0 asks for the default: 1 prefix token (CLS)
// when tokens-1 is a perfect square, else 0 when tokens is one. gridH and
// gridW of 0 ask for a square grid; when given, the prefix defaults to
// tokens - gridH*gridW.
func InferLayout(tokens, dim, prefix, gridH, gridW int) (Layout, error) {
	l := Layout{Tokens: tokens, Dim: dim}
	switch {
	case gridH > 0 || gridW > 0:
		if gridH <= 0 || gridW <= 0 {
			return l, fmt.Errorf("%w: grid %dx%d", ErrBadLayout, gridH, gridW)
		}
		l.GridH, l.GridW = gridH, gridW
		l.Prefix = tokens - gridH*gridW
		if prefix >= 0 && prefix != l.Prefix {
			return l, fmt.Errorf("%w: %d tokens = %d prefix + %dx%d grid does not add up", ErrBadLayout, tokens, prefix, gridH, gridW)
		}
		if l.Prefix < 0 {
			return l, fmt.Errorf("%w: a %dx%d grid needs %d tokens, samples have %d", ErrBadLayout, gridH, gridW, gridH*gridW, tokens)
		}
	case prefix >= 0:
		side, ok := isqrt(tokens - prefix)
		if !ok {
			return l, fmt.Errorf("%w: %d tokens minus %d prefix tokens is not a square grid; give --grid HxW", ErrBadLayout, tokens, prefix)
		}
		l.Prefix, l.GridH, l.GridW = prefix, side, side
	default:
		if side, ok := isqrt(tokens - 1); ok && tokens > 1 {
			l.Prefix, l.GridH, l.GridW = 1, side, side
		} else if side, ok := isqrt(tokens); ok {
			l.GridH, l.GridW = side, side
		} else {
			return l, fmt.Errorf("%w: %d tokens is neither a square grid nor one prefix token plus a square grid; give --grid HxW or --prefix-tokens N", ErrBadLayout, tokens)
		}
	}
	return l, l.Validate()
}

// isqrt returns the integer square root of n and whether n is a perfect
// square (n >= 0).
func isqrt(n int) (int, bool) {
	if n < 0 {
		return 0, false
	}
	r := int(math.Sqrt(float64(n)))
	for r*r > n {
		r--
	}
	for (r+1)*(r+1) <= n {
		r++
	}
	return r, r*r == n
}
