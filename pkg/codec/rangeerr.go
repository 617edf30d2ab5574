package codec

import (
	"fmt"
	"math"
)

// RangeError reports an input value that a codec cannot hold. It wraps
// ErrRange, and says where the value is, so that callers can name the
// sample, token and channel.
type RangeError struct {
	// Index is the value's index in the values given to Encode (or to
	// Spec.New as training data): sample-major, then token, then channel.
	Index int
	// Value is the value itself.
	Value float32
	// Why says what is wrong with it ("is not finite", ...).
	Why string
}

// Error implements error.
func (e *RangeError) Error() string {
	return fmt.Sprintf("%v: value %g at index %d %s", ErrRange, e.Value, e.Index, e.Why)
}

// Unwrap returns ErrRange.
func (e *RangeError) Unwrap() error { return ErrRange }

// MaxFloat16 is the largest finite float16 value.
const MaxFloat16 = 65504

// checkRange reports the first value of src that is not finite or whose
// magnitude exceeds limit, with why saying what holds the codec to that
// limit; src starts at index base of the caller's values.
func checkRange(src []float32, base int, limit float32, why string) error {
	for i, v := range src {
		if v != v || v > math.MaxFloat32 || v < -math.MaxFloat32 {
			return &RangeError{Index: base + i, Value: v, Why: "is not finite"}
		}
		if abs32(v) > limit {
			return &RangeError{Index: base + i, Value: v, Why: fmt.Sprintf("exceeds ±%g, %s", limit, why)}
		}
	}
	return nil
}
