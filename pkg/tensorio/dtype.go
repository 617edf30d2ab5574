package tensorio

import (
	"fmt"
	"strings"
)

// DType is the element type of a stored tensor. The zero value is invalid.
type DType uint8

// The element types that this package reads and writes, all little-endian.
const (
	Float16  DType = iota + 1 // IEEE 754 binary16
	BFloat16                  // bfloat16: the top half of a float32
	Float32                   // IEEE 754 binary32
	Float64                   // IEEE 754 binary64
)

// String returns "float16", "bfloat16", "float32" or "float64", or
// "DType(n)" for an invalid value.
func (d DType) String() string {
	switch d {
	case Float16:
		return "float16"
	case BFloat16:
		return "bfloat16"
	case Float32:
		return "float32"
	case Float64:
		return "float64"
	}
	return fmt.Sprintf("DType(%d)", uint8(d))
}

// Size returns the size of one element in bytes, or 0 for an invalid DType.
func (d DType) Size() int {
	switch d {
	case Float16, BFloat16:
		return 2
	case Float32:
		return 4
	case Float64:
		return 8
	}
	return 0
}

// Valid reports whether d is one of the defined element types.
func (d DType) Valid() bool { return d.Size() != 0 }

// ParseDType parses a dtype name, case-insensitively: the String forms and
// the common aliases "f16", "fp16", "half", "bf16", "f32", "fp32", "float",
// "f64", "fp64" and "double". Other names give an error wrapping ErrDType.
func ParseDType(s string) (DType, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "float16", "f16", "fp16", "half":
		return Float16, nil
	case "bfloat16", "bf16":
		return BFloat16, nil
	case "float32", "f32", "fp32", "float":
		return Float32, nil
	case "float64", "f64", "fp64", "double":
		return Float64, nil
	}
	return 0, fmt.Errorf("dtype %q (want float16, bfloat16, float32 or float64): %w", s, ErrDType)
}
