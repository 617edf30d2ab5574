package tensorio

import (
	"archive/zip"
	"encoding/binary"
	"errors"
	"strings"
	"testing"
)

// malformedCase is one bad file with the sentinel and the words its error
// must hold.
type malformedCase struct {
	name  string
	ext   string
	entry string // tensor or array name, if any
	file  []byte
	want  error
	msg   string
}

func npyDict(descr, order, shape string) string {
	return "{'descr': " + descr + ", 'fortran_order': " + order + ", 'shape': " + shape + ", }"
}

func malformedCases(t testing.TB) []malformedCase {
	data := make([]byte, 2*3*4*4)
	good := npyDict("'<f4'", "False", "(2, 3, 4)")
	st := func(h string, data []byte) []byte { return stFile(h, data) }
	hugeLen := binary.LittleEndian.AppendUint64(nil, 1<<62)
	stLen := func(n uint64, rest string) []byte {
		return append(binary.LittleEndian.AppendUint64(nil, n), rest...)
	}
	return []malformedCase{
		// .npy
		{"npy/empty", extNPY, "", nil, ErrTruncated, "too short"},
		{"npy/bad magic", extNPY, "", npyFile(1, good, data)[1:], ErrFormat, "bad magic"},
		{"npy/magic only", extNPY, "", []byte("\x93NUMP"), ErrTruncated, "too short"},
		{"npy/zip magic", extNPY, "", []byte("PK\x03\x04\x14\x00\x00\x00"), ErrFormat, "looks like a zip"},
		{"npy/version 4.0", extNPY, "", npyFile(4, good, data), ErrFormat, "unsupported format version 4.0"},
		{"npy/version 1.1", extNPY, "", func() []byte { b := npyFile(1, good, data); b[7] = 1; return b }(), ErrFormat, "version 1.1"},
		{"npy/no header length", extNPY, "", []byte("\x93NUMPY\x02\x00\x10"), ErrTruncated, "too short"},
		{"npy/header length beyond file", extNPY, "", npyFile(1, good, data)[:60], ErrTruncated, "header length 62 beyond the end of a 60-byte file"},
		{"npy/header length over limit", extNPY, "", binary.LittleEndian.AppendUint32([]byte("\x93NUMPY\x02\x00"), 2<<20), ErrTooLarge, "exceeds the limit"},
		{"npy/unterminated dict", extNPY, "", npyFile(1, "{'descr': '<f4', 'fortran_order': False", data), ErrFormat, "unterminated dict"},
		{"npy/unterminated string", extNPY, "", npyFile(1, "{'descr': '<f4", data), ErrFormat, "unterminated string"},
		{"npy/unterminated tuple", extNPY, "", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3", data), ErrFormat, "unterminated ("},
		{"npy/not a dict", extNPY, "", npyFile(1, "['descr']", data), ErrFormat, "does not start with '{'"},
		{"npy/trailing garbage", extNPY, "", npyFile(1, good+" x", data), ErrFormat, "after the dict"},
		{"npy/missing descr", extNPY, "", npyFile(1, "{'fortran_order': False, 'shape': (2, 3, 4)}", data), ErrFormat, "missing key 'descr'"},
		{"npy/missing shape", extNPY, "", npyFile(1, "{'descr': '<f4', 'fortran_order': False}", data), ErrFormat, "missing key 'shape'"},
		{"npy/duplicate key", extNPY, "", npyFile(1, "{'descr': '<f4', 'descr': '<f2'}", data), ErrFormat, "duplicate key 'descr'"},
		{"npy/unexpected key", extNPY, "", npyFile(1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), 'x': 1}", data), ErrFormat, "unexpected key 'x'"},
		{"npy/bad word", extNPY, "", npyFile(1, npyDict("'<f4'", "false", "(2, 3, 4)"), data), ErrFormat, `unexpected word "false"`},
		{"npy/order not bool", extNPY, "", npyFile(1, npyDict("'<f4'", "0", "(2, 3, 4)"), data), ErrFormat, "'fortran_order' is 0"},
		{"npy/fortran order", extNPY, "", npyFile(1, npyDict("'<f4'", "True", "(2, 3, 4)"), data), ErrShape, "fortran (column-major) order"},
		{"npy/big-endian", extNPY, "", npyFile(1, npyDict("'>f4'", "False", "(2, 3, 4)"), data), ErrDType, "unsupported dtype '>f4' (big-endian)"},
		{"npy/int dtype", extNPY, "", npyFile(1, npyDict("'<i4'", "False", "(2, 3, 4)"), data), ErrDType, "unsupported dtype '<i4'"},
		{"npy/void 4", extNPY, "", npyFile(1, npyDict("'|V4'", "False", "(2, 3, 4)"), data), ErrDType, "unsupported dtype '|V4'"},
		{"npy/structured", extNPY, "", npyFile(1, npyDict("[('a', '<f4')]", "False", "(2, 3, 4)"), data), ErrDType, "structured dtype"},
		{"npy/nested too deep", extNPY, "", npyFile(1, npyDict(strings.Repeat("[", 20), "False", "(2,)"), data), ErrFormat, "nested too deeply"},
		{"npy/shape not tuple", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "24"), data), ErrFormat, "'shape' is 24"},
		{"npy/shape of strings", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "('2', 3)"), data), ErrFormat, "want integers"},
		{"npy/rank 0", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "()"), data), ErrShape, "rank 0"},
		{"npy/rank 1", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(24,)"), data), ErrShape, "rank 1"},
		{"npy/rank 4", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(1, 2, 3, 4)"), data), ErrShape, "rank 4"},
		{"npy/rank 40", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "("+strings.Repeat("1, ", 40)+")"), data), ErrShape, "rank 40"},
		{"npy/negative", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(-2, 3, 4)"), data), ErrShape, "negative dimension"},
		{"npy/empty samples", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(2, 0, 4)"), data), ErrShape, "empty samples"},
		{"npy/overflow product", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(9223372036854775807, 2, 2)"), data), ErrShape, "element count overflows"},
		{"npy/overflow sample", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(4294967296, 4294967296)"), data), ErrShape, "element count overflows"},
		{"npy/dimension out of range", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(99999999999999999999, 2)"), data), ErrShape, "out of range"},
		{"npy/sample too large", extNPY, "", npyFile(1, npyDict("'<f2'", "False", "(1, 65536, 65536)"), data), ErrTooLarge, "values per sample exceeds"},
		{"npy/truncated data", extNPY, "", npyFile(1, good, data[:10]), ErrTruncated, "needs 96 data bytes, the file has 10"},
		{"npy/huge n truncated", extNPY, "", npyFile(1, npyDict("'<f4'", "False", "(1000000000000, 3, 4)"), data), ErrTruncated, "needs 48000000000000 data bytes"},
		{"npy/v3 bad utf-8", extNPY, "", npyFile(3, good+"\xff", data), ErrFormat, "not valid utf-8"},

		// .safetensors
		{"st/npy magic", extSafetensors, "", npyFile(1, good, data), ErrTooLarge, "looks like a .npy file"},
		{"st/zip magic", extSafetensors, "", npzOf(t, zip.Store, npzEntry{"a", nil}), ErrTooLarge, "looks like a zip"},
		{"st/short", extSafetensors, "", []byte{1, 0, 0}, ErrTruncated, "shorter than the 8-byte header length"},
		{"st/header length huge", extSafetensors, "", append(hugeLen, "{}"...), ErrTooLarge, "exceeds the limit"},
		{"st/header length beyond file", extSafetensors, "", stLen(1000, "{}"), ErrTruncated, "header length 1000 beyond the end of a 10-byte file"},
		{"st/header length tiny", extSafetensors, "", stLen(1, "{}"), ErrFormat, "too small"},
		{"st/not json object", extSafetensors, "", st(`["a"]`, nil), ErrFormat, "does not start with '{'"},
		{"st/bad JSON", extSafetensors, "", st(`{"t": {"dtype": "F32",}`, nil), ErrFormat, "bad JSON"},
		{"st/bad utf-8", extSafetensors, "", st("{\"\xff\": 1}", nil), ErrFormat, "utf-8"},
		{"st/entry not object", extSafetensors, "", st(`{"t": 3}`, nil), ErrFormat, "bad entry"},
		{"st/missing offsets", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4]}}`, data), ErrFormat, `missing "data_offsets"`},
		{"st/three offsets", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 1, 2]}}`, data), ErrFormat, "has 3 values"},
		{"st/offsets reversed", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [96, 0]}}`, data), ErrFormat, "bad data_offsets [96, 0]"},
		{"st/offset not integer", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 9.5]}}`, data), ErrFormat, "bad entry"},
		{"st/offsets out of range", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 96]}}`, data[:50]), ErrTruncated, "beyond the 50-byte data region"},
		{"st/size mismatch", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 90]}}`, data), ErrFormat, "needs 96 bytes, data_offsets [0, 90] hold 90"},
		{"st/other tensor size mismatch", extSafetensors, "t", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 96]}, "u": {"dtype": "I64", "shape": [1], "data_offsets": [0, 0]}}`, data), ErrFormat, "I64 shape [1] needs 8 bytes"},
		{"st/overlap", extSafetensors, "t", st(`{"t": {"dtype": "F32", "shape": [2, 3, 2], "data_offsets": [0, 48]}, "u": {"dtype": "F32", "shape": [2, 3, 2], "data_offsets": [40, 88]}}`, data), ErrFormat, "overlap"},
		{"st/negative shape", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [-2, 3, 4], "data_offsets": [0, 96]}}`, data), ErrShape, "negative dimension"},
		{"st/overflow shape", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [4294967296, 4294967296, 2], "data_offsets": [0, 96]}}`, data), ErrShape, "overflows"},
		{"st/rank 1", extSafetensors, "", st(`{"t": {"dtype": "F32", "shape": [24], "data_offsets": [0, 96]}}`, data), ErrShape, "rank 1"},
		{"st/unknown dtype", extSafetensors, "", st(`{"t": {"dtype": "Q7", "shape": [2, 3, 4], "data_offsets": [0, 96]}}`, data), ErrDType, `unsupported dtype "Q7"`},
		{"st/integer dtype", extSafetensors, "", st(`{"t": {"dtype": "I32", "shape": [2, 3, 4], "data_offsets": [0, 96]}}`, data), ErrDType, `unsupported dtype "I32"`},
		{"st/metadata not strings", extSafetensors, "", st(`{"__metadata__": {"a": 1}, "t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 96]}}`, data), ErrFormat, "not a map of strings"},
		{"st/missing tensor name", extSafetensors, "nope", st(`{"t": {"dtype": "F32", "shape": [2, 3, 4], "data_offsets": [0, 96]}}`, data), ErrNotFound, `no tensor "nope" (tensors: "t")`},
		{"st/several tensors", extSafetensors, "", st(`{"b": {"dtype": "F32", "shape": [3, 4], "data_offsets": [0, 48]}, "a": {"dtype": "F32", "shape": [3, 4], "data_offsets": [48, 96]}}`, data), ErrNotFound, `holds 2 tensors, name one as x.safetensors:NAME ("a", "b")`},
		{"st/no tensors", extSafetensors, "", st(`{"__metadata__": {}}`, nil), ErrNotFound, "holds no tensors"},

		// .npz
		{"npz/not zip", extNPZ, "", npyFile(1, good, data), ErrFormat, "not a zip archive) (looks like a .npy file)"},
		{"npz/short", extNPZ, "", []byte("PK"), ErrFormat, "too short"},
		{"npz/truncated zip", extNPZ, "", npzOf(t, zip.Store, npzEntry{"a", npyFile(1, good, data)})[:100], ErrFormat, "zip"},
		{"npz/missing array", extNPZ, "b", npzOf(t, zip.Store, npzEntry{"a", npyFile(1, good, data)}), ErrNotFound, `no array "b" (arrays: "a")`},
		{"npz/several arrays", extNPZ, "", npzOf(t, zip.Deflate, npzEntry{"a", npyFile(1, good, data)}, npzEntry{"b", npyFile(1, good, data)}), ErrNotFound, `holds 2 arrays, name one as x.npz:NAME ("a", "b")`},
		{"npz/no arrays", extNPZ, "", npzOf(t, zip.Store), ErrNotFound, "holds no arrays"},
		{"npz/stored bad dtype", extNPZ, "", npzOf(t, zip.Store, npzEntry{"a", npyFile(1, npyDict("'>f8'", "False", "(2, 3, 4)"), data)}), ErrDType, "x.npz:a: npy header: unsupported dtype '>f8' (big-endian)"},
		{"npz/deflated truncated entry", extNPZ, "a", npzOf(t, zip.Deflate, npzEntry{"a", npyFile(1, good, data[:20])}), ErrTruncated, "x.npz:a: npy header: shape [2, 3, 4] of float32 needs 96 data bytes, the file has 20"},
	}
}

func TestMalformed(t *testing.T) {
	for _, tc := range malformedCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			name := "x" + tc.ext
			if tc.entry != "" {
				name += ":" + tc.entry
			}
			s, err := openBytes(name, tc.file, tc.ext, tc.entry)
			if err == nil {
				s.Close()
				t.Fatalf("opened; want %v", tc.want)
			}
			if !errors.Is(err, tc.want) {
				t.Errorf("error %q does not wrap %q", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error %q does not say %q", err, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), name+": ") && !strings.HasPrefix(err.Error(), name+":") {
				t.Errorf("error %q does not start with the file name %q", err, name)
			}
		})
	}
}

// TestNPYHeaders reads valid headers in the forms numpy has written over
// time, and the bfloat16 conventions.
func TestNPYHeaders(t *testing.T) {
	v := testValues(12)
	f4 := encodeValues(Float32, v)
	bf := encodeValues(BFloat16, v)
	for _, tc := range []struct {
		name  string
		major byte
		dict  string
		data  []byte
		dt    DType
	}{
		{"v1", 1, npyDict("'<f4'", "False", "(3, 4)"), f4, Float32},
		{"v2", 2, npyDict("'<f4'", "False", "(3, 4)"), f4, Float32},
		{"v3", 3, npyDict("'<f4'", "False", "(3, 4)"), f4, Float32},
		{"double quotes, no spaces", 1, `{"descr":"<f4","fortran_order":False,"shape":(3,4)}`, f4, Float32},
		{"key order", 1, "{'shape': (3, 4), 'fortran_order': False, 'descr': '<f4'}", f4, Float32},
		{"python 2 longs", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3L, 4L), }", f4, Float32},
		{"list shape", 1, npyDict("'<f4'", "False", "[3, 4]"), f4, Float32},
		{"padding and newline", 1, npyDict("'<f4'", "False", "(3, 4)") + "          \n", f4, Float32},
		{"native order", 1, npyDict("'=f4'", "False", "(3, 4)"), f4, Float32},
		{"bfloat16 as <V2", 1, npyDict("'<V2'", "False", "(3, 4)"), bf, BFloat16},
		{"bfloat16 as |V2", 1, npyDict("'|V2'", "False", "(3, 4)"), bf, BFloat16},
		{"bfloat16 by name", 1, npyDict("'bfloat16'", "False", "(3, 4)"), bf, BFloat16},
		{"trailing data", 1, npyDict("'<f4'", "False", "(3, 4)"), append(f4, 1, 2, 3), Float32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, err := openBytes("h.npy", npyFile(tc.major, tc.dict, tc.data), extNPY, "")
			if err != nil {
				t.Fatal(err)
			}
			want := make([]float32, len(v))
			for i := range v {
				want[i] = rounded(tc.dt, v[i])
			}
			checkSource(t, s, tc.dt, []int{3, 4}, want)
		})
	}
}

// TestNPYHeaderBytes checks the writer's header against numpy's layout.
func TestNPYHeaderBytes(t *testing.T) {
	h := npyHeaderBytes(Float16, []int{192, 197, 192})
	dict := "{'descr': '<f2', 'fortran_order': False, 'shape': (192, 197, 192), }"
	want := "\x93NUMPY\x01\x00\x76\x00" + dict + strings.Repeat(" ", 128-10-len(dict)-1) + "\n"
	if string(h) != want {
		t.Errorf("header\n%q, want\n%q", h, want)
	}
	for _, shape := range [][]int{{1, 2}, {3, 4, 5}, {1 << 30, 1 << 20, 1}} {
		for _, dt := range allDTypes {
			h := npyHeaderBytes(dt, shape)
			if len(h)%npyAlign != 0 || h[len(h)-1] != '\n' {
				t.Errorf("%v %v: header of %d bytes", dt, shape, len(h))
			}
		}
	}
}
