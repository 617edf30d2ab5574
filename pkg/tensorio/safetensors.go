package tensorio

import (
	"bytes"
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
	"unicode/utf8"
)

// The .safetensors format, all integers little-endian:
//
//	offset  size  field
//	0       8     header length N, uint64
//	8       N     header: a JSON object, utf-8, optionally padded with
//	              trailing spaces (writers pad N to a multiple of 8)
//	8+N     ...   data region: the tensors' bytes, C order
//
// The header maps each tensor name to {"dtype": "F16", "shape": [..],
// "data_offsets": [begin, end]}, offsets relative to the data region, and
// may hold "__metadata__": a map of strings to strings.
const (
	stLenSize     = 8
	stMetadataKey = "__metadata__"
	stPad         = 8
)

// stDTypeSizes gives the element size of the safetensors dtypes that this
// package knows, so that the offsets of every tensor in a file can be
// checked, not only those of the tensor read.
var stDTypeSizes = map[string]int{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1, "F8_E8M0": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8, "C64": 8,
}

func stDType(s string) (DType, bool) {
	switch s {
	case "F16":
		return Float16, true
	case "BF16":
		return BFloat16, true
	case "F32":
		return Float32, true
	case "F64":
		return Float64, true
	}
	return 0, false
}

func stDTypeName(dt DType) string {
	switch dt {
	case Float16:
		return "F16"
	case BFloat16:
		return "BF16"
	case Float32:
		return "F32"
	case Float64:
		return "F64"
	}
	return ""
}

// stTensor is one validated entry of a safetensors header.
type stTensor struct {
	name       string
	dtype      string
	shape      []int64
	begin, end int64 // in the data region
}

// stHeader is a parsed and validated safetensors header.
type stHeader struct {
	tensors   []stTensor // sorted by name
	meta      map[string]string
	dataStart int64 // offset of the data region in the file
}

// readSafetensorsHeader reads and validates the header of a safetensors
// file of the given size. Errors start with "safetensors header:".
func readSafetensorsHeader(r io.ReaderAt, size int64) (stHeader, error) {
	fail := func(format string, args ...any) (stHeader, error) {
		return stHeader{}, fmt.Errorf("safetensors header: "+format, args...)
	}
	if size < stLenSize {
		return fail("file of %d bytes is shorter than the 8-byte header length: %w", size, ErrTruncated)
	}
	var lb [stLenSize]byte
	if err := readFullAt(r, lb[:], 0); err != nil {
		return fail("%w", err)
	}
	// A file of another format fails one of the checks below; say which.
	hint := ""
	if bytes.HasPrefix(lb[:], []byte(npyMagic)) || bytes.HasPrefix(lb[:], []byte("PK\x03\x04")) {
		hint = magicHint(lb[:])
	}
	n := binary.LittleEndian.Uint64(lb[:])
	switch {
	case n > maxSafetensorsHeaderLen:
		return fail("header length %d exceeds the limit of %d%s: %w", n, maxSafetensorsHeaderLen, hint, ErrTooLarge)
	case n > uint64(size-stLenSize):
		return fail("header length %d beyond the end of a %d-byte file%s: %w", n, size, hint, ErrTruncated)
	case n < 2:
		return fail("header length %d is too small for a JSON object: %w", n, ErrFormat)
	}
	hdr := make([]byte, n)
	if err := readFullAt(r, hdr, stLenSize); err != nil {
		return fail("%w", err)
	}
	if hdr[0] != '{' {
		return fail("header does not start with '{' (not a .safetensors file?)%s: %w", hint, ErrFormat)
	}
	if !utf8.Valid(hdr) {
		return fail("header is not valid utf-8: %w", ErrFormat)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return fail("bad JSON: %v: %w", err, ErrFormat)
	}
	h := stHeader{dataStart: stLenSize + int64(n)}
	dataLen := size - h.dataStart
	names := make([]string, 0, len(raw))
	for k := range raw {
		names = append(names, k)
	}
	slices.Sort(names)
	for _, name := range names {
		msg := raw[name]
		if name == stMetadataKey {
			if err := json.Unmarshal(msg, &h.meta); err != nil {
				return fail("%s is not a map of strings: %w", stMetadataKey, ErrFormat)
			}
			continue
		}
		t, err := parseSTTensor(name, msg, dataLen)
		if err != nil {
			return fail("tensor %q: %w", truncate(name, 80), err)
		}
		h.tensors = append(h.tensors, t)
	}
	// No two tensors may share bytes.
	byOff := slices.Clone(h.tensors)
	slices.SortFunc(byOff, func(a, b stTensor) int {
		return cmp.Or(cmp.Compare(a.begin, b.begin), cmp.Compare(a.end, b.end))
	})
	for i := 1; i < len(byOff); i++ {
		a, b := byOff[i-1], byOff[i]
		if a.end > b.begin && a.end > a.begin && b.end > b.begin {
			return fail("tensors %q and %q overlap: %w", truncate(a.name, 80), truncate(b.name, 80), ErrFormat)
		}
	}
	return h, nil
}

// readFullAt reads len(p) bytes at off, mapping a short read to
// ErrTruncated.
func readFullAt(r io.ReaderAt, p []byte, off int64) error {
	n, err := r.ReadAt(p, off)
	if n == len(p) {
		return nil
	}
	if err == nil || err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("file ends early: %w", ErrTruncated)
	}
	return err
}

// parseSTTensor parses and checks one tensor entry against a data region of
// dataLen bytes.
func parseSTTensor(name string, msg json.RawMessage, dataLen int64) (stTensor, error) {
	var e struct {
		DType       *string  `json:"dtype"`
		Shape       *[]int64 `json:"shape"`
		DataOffsets *[]int64 `json:"data_offsets"`
	}
	if err := json.Unmarshal(msg, &e); err != nil {
		return stTensor{}, fmt.Errorf("bad entry: %v: %w", err, ErrFormat)
	}
	switch {
	case e.DType == nil:
		return stTensor{}, fmt.Errorf("missing \"dtype\": %w", ErrFormat)
	case e.Shape == nil:
		return stTensor{}, fmt.Errorf("missing \"shape\": %w", ErrFormat)
	case e.DataOffsets == nil:
		return stTensor{}, fmt.Errorf("missing \"data_offsets\": %w", ErrFormat)
	case len(*e.DataOffsets) != 2:
		return stTensor{}, fmt.Errorf("\"data_offsets\" has %d values, want 2: %w", len(*e.DataOffsets), ErrFormat)
	}
	t := stTensor{name: name, dtype: *e.DType, shape: *e.Shape, begin: (*e.DataOffsets)[0], end: (*e.DataOffsets)[1]}
	if t.begin < 0 || t.end < t.begin {
		return stTensor{}, fmt.Errorf("bad data_offsets [%d, %d]: %w", t.begin, t.end, ErrFormat)
	}
	if t.end > dataLen {
		return stTensor{}, fmt.Errorf("data_offsets [%d, %d] beyond the %d-byte data region: %w", t.begin, t.end, dataLen, ErrTruncated)
	}
	numel := uint64(1)
	for _, d := range t.shape {
		if d < 0 {
			return stTensor{}, fmt.Errorf("shape %s has a negative dimension: %w", fmtShape(t.shape), ErrShape)
		}
		var hi uint64
		if hi, numel = bits.Mul64(numel, uint64(d)); hi != 0 {
			return stTensor{}, fmt.Errorf("shape %s: element count overflows: %w", fmtShape(t.shape), ErrShape)
		}
	}
	if esize, ok := stDTypeSizes[t.dtype]; ok {
		hi, nb := bits.Mul64(numel, uint64(esize))
		if hi != 0 || nb > math.MaxInt64 {
			return stTensor{}, fmt.Errorf("shape %s: element count overflows: %w", fmtShape(t.shape), ErrShape)
		}
		if int64(nb) != t.end-t.begin {
			return stTensor{}, fmt.Errorf("%s shape %s needs %d bytes, data_offsets [%d, %d] hold %d: %w",
				t.dtype, fmtShape(t.shape), nb, t.begin, t.end, t.end-t.begin, ErrFormat)
		}
	}
	return t, nil
}

// openSafetensors opens the tensor called tensor (or the only one, when
// tensor is "") of a safetensors file held in r.
func openSafetensors(name string, r io.ReaderAt, size int64, tensor string, closer io.Closer) (*source, error) {
	h, err := readSafetensorsHeader(r, size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var t *stTensor
	if tensor == "" {
		switch len(h.tensors) {
		case 0:
			return nil, fmt.Errorf("%s: holds no tensors: %w", name, ErrNotFound)
		case 1:
			t = &h.tensors[0]
		default:
			return nil, fmt.Errorf("%s: holds %d tensors, name one as %s:NAME (%s): %w",
				name, len(h.tensors), name, listNames(h.tensors, func(t stTensor) string { return t.name }), ErrNotFound)
		}
	} else {
		i, ok := slices.BinarySearchFunc(h.tensors, tensor, func(t stTensor, n string) int { return strings.Compare(t.name, n) })
		if !ok {
			return nil, fmt.Errorf("%s: no tensor %q (tensors: %s): %w",
				name, tensor, listNames(h.tensors, func(t stTensor) string { return t.name }), ErrNotFound)
		}
		t = &h.tensors[i]
	}
	dt, ok := stDType(t.dtype)
	if !ok {
		return nil, fmt.Errorf("%s: tensor %q has unsupported dtype %q (want F16, BF16, F32 or F64): %w",
			name, t.name, truncate(t.dtype, 40), ErrDType)
	}
	l, err := newLayout(t.shape, dt.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: tensor %q: %w", name, t.name, err)
	}
	return &source{
		name:   name,
		dtype:  dt,
		l:      l,
		data:   &atReader{r: r, base: h.dataStart + t.begin, size: l.dataBytes},
		closer: closer,
		meta:   h.meta,
	}, nil
}

// listNames lists up to 20 names, quoted, for an error message.
func listNames[T any](items []T, name func(T) string) string {
	const maxListed = 20
	var sb strings.Builder
	for i, it := range items {
		if i == maxListed {
			fmt.Fprintf(&sb, ", and %d more", len(items)-maxListed)
			break
		}
		if i > 0 {
			sb.WriteString(", ")
		}
		fmt.Fprintf(&sb, "%q", truncate(name(it), 80))
	}
	return sb.String()
}

// safetensorsHeaderBytes returns the length and header of a safetensors
// file that holds one tensor, padded with spaces to a multiple of 8 bytes.
func safetensorsHeaderBytes(tensor string, dt DType, shape []int, dataBytes int64, meta map[string]string) ([]byte, error) {
	type entry struct {
		DType       string   `json:"dtype"`
		Shape       []int    `json:"shape"`
		DataOffsets [2]int64 `json:"data_offsets"`
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	buf.WriteByte('{')
	if len(meta) > 0 {
		buf.WriteString(`"` + stMetadataKey + `":`)
		if err := enc.Encode(meta); err != nil { // keys sorted
			return nil, err
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
		buf.WriteByte(',')
	}
	if err := enc.Encode(tensor); err != nil {
		return nil, err
	}
	buf.Truncate(buf.Len() - 1)
	buf.WriteByte(':')
	if err := enc.Encode(entry{DType: stDTypeName(dt), Shape: shape, DataOffsets: [2]int64{0, dataBytes}}); err != nil {
		return nil, err
	}
	buf.Truncate(buf.Len() - 1)
	buf.WriteByte('}')
	for buf.Len()%stPad != 0 {
		buf.WriteByte(' ')
	}
	out := binary.LittleEndian.AppendUint64(make([]byte, 0, stLenSize+buf.Len()), uint64(buf.Len()))
	return append(out, buf.Bytes()...), nil
}
