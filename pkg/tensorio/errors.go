package tensorio

import "errors"

// Sentinel errors. Every error that this package returns for bad input wraps
// one of them, with the file and the problem named in front; callers test
// them with errors.Is.
var (
	// ErrFormat means a file is malformed: bad magic, an unsupported format
	// version, an unparsable header, or lengths that contradict each other.
	ErrFormat = errors.New("malformed file")
	// ErrDType means the stored element type is not float16, bfloat16,
	// float32 or float64 in little-endian byte order.
	ErrDType = errors.New("unsupported dtype")
	// ErrShape means the stored shape is not [tokens, dim] or
	// [n, tokens, dim] of non-negative sizes, a sample is empty, the shape's
	// element count overflows, or the layout is not row-major.
	ErrShape = errors.New("unsupported shape")
	// ErrTruncated means the file is shorter than its header says.
	ErrTruncated = errors.New("truncated data")
	// ErrNotFound means a named array or tensor is missing, or a file holds
	// several and none was named.
	ErrNotFound = errors.New("not found")
	// ErrTooLarge means a declared length exceeds a hard limit of this
	// package (header size, values per sample, values in ReadAll).
	ErrTooLarge = errors.New("too large")
)
