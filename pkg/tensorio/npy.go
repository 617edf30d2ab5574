package tensorio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The .npy format (numpy.lib.format), all integers little-endian:
//
//	offset  size  field
//	0       6     magic "\x93NUMPY"
//	6       1     major version: 1, 2 or 3
//	7       1     minor version: 0
//	8       2|4   header length H: uint16 for 1.0, uint32 for 2.0 and 3.0
//	10|12   H     header: a Python dict literal, latin-1 (1.0, 2.0) or
//	              utf-8 (3.0), padded with spaces and ended by '\n' so that
//	              the data starts on a 64-byte boundary (16 in old files)
//	10+H|12+H     data: the elements in C order
//
// The dict has exactly the keys 'descr' (a dtype string), 'fortran_order'
// (True or False) and 'shape' (a tuple of integers).
const (
	npyMagic      = "\x93NUMPY"
	npyPrefixV1   = 10 // magic, version, uint16 length
	npyPrefixV2   = 12 // magic, version, uint32 length
	npyAlign      = 64
	npyMinVersion = 1
	npyMaxVersion = 3
)

// Descriptors of the element types. bfloat16 has no numpy type code:
// ml_dtypes registers it as a 2-byte void type, so np.save writes '<V2'.
const (
	npyDescrF16  = "<f2"
	npyDescrBF16 = "<V2"
	npyDescrF32  = "<f4"
	npyDescrF64  = "<f8"
)

// npyHeader is a parsed and validated .npy header.
type npyHeader struct {
	dtype   DType
	l       layout
	dataOff int64 // offset of the data from the start of the .npy stream
}

// readNPYHeader reads a .npy header from r, which holds size bytes in all,
// and checks that the data the header declares fits in them. It reads
// exactly the header's bytes, so that a stream is left at the data. Errors
// start with "npy header:" and wrap a sentinel.
func readNPYHeader(r io.Reader, size int64) (npyHeader, error) {
	var pre [npyPrefixV2]byte
	m := min(size, 8)
	if m < 0 {
		m = 0
	}
	if _, err := io.ReadFull(r, pre[:m]); err != nil {
		return npyHeader{}, npyReadErr(err)
	}
	if !bytes.HasPrefix([]byte(npyMagic), pre[:min(m, 6)]) {
		return npyHeader{}, fmt.Errorf("npy header: bad magic %q (not a .npy file)%s: %w", pre[:min(m, 6)], magicHint(pre[:m]), ErrFormat)
	}
	if m < 8 {
		return npyHeader{}, fmt.Errorf("npy header: file of %d bytes is too short: %w", size, ErrTruncated)
	}
	major, minor := pre[6], pre[7]
	if major < npyMinVersion || major > npyMaxVersion || minor != 0 {
		return npyHeader{}, fmt.Errorf("npy header: unsupported format version %d.%d (want 1.0, 2.0 or 3.0): %w", major, minor, ErrFormat)
	}
	prefix := int64(npyPrefixV1)
	if major >= 2 {
		prefix = npyPrefixV2
	}
	if size < prefix {
		return npyHeader{}, fmt.Errorf("npy header: file of %d bytes is too short: %w", size, ErrTruncated)
	}
	if _, err := io.ReadFull(r, pre[8:prefix]); err != nil {
		return npyHeader{}, npyReadErr(err)
	}
	var hlen int64
	if major == 1 {
		hlen = int64(binary.LittleEndian.Uint16(pre[8:]))
	} else {
		hlen = int64(binary.LittleEndian.Uint32(pre[8:]))
	}
	if hlen > maxNPYHeaderLen {
		return npyHeader{}, fmt.Errorf("npy header: header length %d exceeds the limit of %d: %w", hlen, maxNPYHeaderLen, ErrTooLarge)
	}
	if hlen > size-prefix {
		return npyHeader{}, fmt.Errorf("npy header: header length %d beyond the end of a %d-byte file: %w", hlen, size, ErrTruncated)
	}
	hdr := make([]byte, hlen)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return npyHeader{}, npyReadErr(err)
	}
	if major == 3 && !utf8.Valid(hdr) {
		return npyHeader{}, fmt.Errorf("npy header: version 3.0 header is not valid utf-8: %w", ErrFormat)
	}
	h, err := parseNPYDict(hdr)
	if err != nil {
		return npyHeader{}, fmt.Errorf("npy header: %w", err)
	}
	h.dataOff = prefix + hlen
	if avail := size - h.dataOff; h.l.dataBytes > avail {
		return npyHeader{}, fmt.Errorf("npy header: shape %s of %s needs %d data bytes, the file has %d: %w",
			fmtShape(h.l.shape), h.dtype, h.l.dataBytes, avail, ErrTruncated)
	}
	return h, nil
}

// magicHint names the format that a wrong magic belongs to, if known.
func magicHint(b []byte) string {
	switch {
	case bytes.HasPrefix(b, []byte("PK")):
		return " (looks like a zip/.npz archive)"
	case len(b) >= 4 && bytes.HasPrefix([]byte(npyMagic), b[:4]):
		return " (looks like a .npy file)"
	case len(b) == 8 && b[7] == 0 && b[6] == 0:
		return " (looks like a .safetensors file)"
	}
	return ""
}

func npyReadErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return fmt.Errorf("npy header: file ends inside the header: %w", ErrTruncated)
	}
	return fmt.Errorf("npy header: %w", streamErr(err))
}

// parseNPYDict parses the header dict and validates dtype, order and shape.
func parseNPYDict(hdr []byte) (npyHeader, error) {
	keys, vals, err := parsePyDict(hdr)
	if err != nil {
		return npyHeader{}, fmt.Errorf("%v: %w", err, ErrFormat)
	}
	var descr, order, shape *pyValue
	for i, k := range keys {
		switch k {
		case "descr":
			descr = &vals[i]
		case "fortran_order":
			order = &vals[i]
		case "shape":
			shape = &vals[i]
		default:
			return npyHeader{}, fmt.Errorf("unexpected key '%s': %w", k, ErrFormat)
		}
	}
	switch {
	case descr == nil:
		return npyHeader{}, fmt.Errorf("missing key 'descr': %w", ErrFormat)
	case order == nil:
		return npyHeader{}, fmt.Errorf("missing key 'fortran_order': %w", ErrFormat)
	case shape == nil:
		return npyHeader{}, fmt.Errorf("missing key 'shape': %w", ErrFormat)
	}
	var h npyHeader
	if h.dtype, err = npyDType(*descr); err != nil {
		return npyHeader{}, err
	}
	if order.kind != pyBool {
		return npyHeader{}, fmt.Errorf("'fortran_order' is %s, want True or False: %w", order, ErrFormat)
	}
	if order.b {
		return npyHeader{}, fmt.Errorf("fortran (column-major) order is not supported; save a C-ordered array: %w", ErrShape)
	}
	if shape.kind != pyTuple && shape.kind != pyList {
		return npyHeader{}, fmt.Errorf("'shape' is %s, want a tuple: %w", shape, ErrFormat)
	}
	if len(shape.items) > maxShapeRank {
		return npyHeader{}, fmt.Errorf("shape has rank %d, want 2 or 3: %w", len(shape.items), ErrShape)
	}
	dims := make([]int64, len(shape.items))
	for i, it := range shape.items {
		if it.kind != pyInt {
			return npyHeader{}, fmt.Errorf("shape %s holds %s, want integers: %w", shape, it, ErrFormat)
		}
		d, err := strconv.ParseInt(it.str, 10, 64)
		if err != nil {
			return npyHeader{}, fmt.Errorf("shape %s: dimension %s out of range: %w", shape, it.str, ErrShape)
		}
		dims[i] = d
	}
	if h.l, err = newLayout(dims, h.dtype.Size()); err != nil {
		return npyHeader{}, err
	}
	return h, nil
}

// npyDType maps a 'descr' value to a DType.
//
// '<' is little-endian; '=' (native) and '|' (not applicable) are read as
// little-endian too, since numpy resolves '=' to '<' or '>' when it writes.
// bfloat16 is accepted as '<V2' (what np.save writes for an ml_dtypes
// bfloat16 array: a 2-byte void, the only 2-byte void type in common use)
// and as 'bfloat16' (what a header written from str(array.dtype) holds).
func npyDType(v pyValue) (DType, error) {
	if v.kind != pyStr {
		if v.kind == pyList {
			return 0, fmt.Errorf("structured dtype %s is not supported: %w", truncate(v.String(), 60), ErrDType)
		}
		return 0, fmt.Errorf("'descr' is %s, want a dtype string: %w", truncate(v.String(), 60), ErrDType)
	}
	d := v.str
	if d == "bfloat16" {
		return BFloat16, nil
	}
	if len(d) >= 2 {
		switch order, code := d[0], d[1:]; order {
		case '<', '=', '|':
			switch code {
			case "f2":
				return Float16, nil
			case "f4":
				return Float32, nil
			case "f8":
				return Float64, nil
			case "V2":
				return BFloat16, nil
			}
		case '>':
			switch code {
			case "f2", "f4", "f8", "V2":
				return 0, fmt.Errorf("unsupported dtype '%s' (big-endian): %w", d, ErrDType)
			}
		}
	}
	return 0, fmt.Errorf("unsupported dtype '%s' (want '<f2', '<f4', '<f8', or bfloat16 as '<V2'): %w", truncate(d, 40), ErrDType)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// npyDescr returns the descr that Create writes for dt.
func npyDescr(dt DType) string {
	switch dt {
	case Float16:
		return npyDescrF16
	case BFloat16:
		return npyDescrBF16
	case Float32:
		return npyDescrF32
	case Float64:
		return npyDescrF64
	}
	return ""
}

// npyHeaderBytes returns the prefix and header of a .npy file, as numpy
// writes them: version 1.0 unless the header needs more than 65535 bytes,
// padded with spaces and '\n' so that the data is 64-byte aligned.
func npyHeaderBytes(dt DType, shape []int) []byte {
	var sb strings.Builder
	fmt.Fprintf(&sb, "{'descr': '%s', 'fortran_order': False, 'shape': (", npyDescr(dt))
	for i, d := range shape {
		if i > 0 {
			sb.WriteString(", ")
		}
		sb.WriteString(strconv.Itoa(d))
	}
	if len(shape) == 1 {
		sb.WriteByte(',')
	}
	sb.WriteString("), }")
	dict := sb.String()
	prefix, major := npyPrefixV1, byte(1)
	pad := npyAlign - (prefix+len(dict)+1)%npyAlign
	if len(dict)+1+pad > 0xffff {
		prefix, major = npyPrefixV2, 2
		pad = npyAlign - (prefix+len(dict)+1)%npyAlign
	}
	hlen := len(dict) + 1 + pad
	out := make([]byte, 0, prefix+hlen)
	out = append(out, npyMagic...)
	out = append(out, major, 0)
	if major == 1 {
		out = binary.LittleEndian.AppendUint16(out, uint16(hlen))
	} else {
		out = binary.LittleEndian.AppendUint32(out, uint32(hlen))
	}
	out = append(out, dict...)
	out = append(out, bytes.Repeat([]byte{' '}, pad)...)
	return append(out, '\n')
}

// openNPY opens a .npy stream held in r at offset 0 with the given size.
func openNPY(name string, r io.ReaderAt, size int64, closer io.Closer) (*source, error) {
	h, err := readNPYHeader(io.NewSectionReader(r, 0, size), size)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &source{
		name:   name,
		dtype:  h.dtype,
		l:      h.l,
		data:   &atReader{r: r, base: h.dataOff, size: h.l.dataBytes},
		closer: closer,
	}, nil
}
