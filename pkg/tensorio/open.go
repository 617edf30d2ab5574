package tensorio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// Recognised file name extensions, compared case-insensitively.
const (
	extNPY         = ".npy"
	extNPZ         = ".npz"
	extSafetensors = ".safetensors"
)

// Open opens one input tensor. spec is one of
//
//	file.npy                 the file's array
//	file.npz                 its only array (else an error listing the names)
//	file.npz:name            the array name (entry name.npy)
//	file.safetensors         its only tensor (else an error listing the names)
//	file.safetensors:name    the tensor name
//
// The format is chosen by the extension and checked against the file's
// magic bytes. A path that itself contains ':' works when that file exists:
// an existing file is always taken whole. The Source's Name is spec.
func Open(spec string) (Source, error) {
	path, name := splitSpec(spec)
	ext := strings.ToLower(filepath.Ext(path))
	switch ext {
	case extNPY, extNPZ, extSafetensors:
	default:
		return nil, fmt.Errorf("%s: unknown file type %q (want .npy, .npz or .safetensors): %w", spec, ext, ErrFormat)
	}
	if ext == extNPY && name != "" {
		return nil, fmt.Errorf("%s: a .npy file holds one unnamed array; drop %q: %w", spec, ":"+name, ErrNotFound)
	}
	f, size, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	var s *source
	switch ext {
	case extNPY:
		s, err = openNPY(spec, f, size, f)
	case extNPZ:
		s, err = openNPZ(spec, f, size, name, f)
	case extSafetensors:
		s, err = openSafetensors(spec, f, size, name, f)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return s, nil
}

// OpenReader opens the tensor held in r, size bytes long, whose format
// (.npy, .npz with one array, or .safetensors with one tensor) it tells
// from the magic bytes: for data that comes without a file name, such as
// standard input copied to a temporary file. name is used in messages and
// is the Source's Name. closer, if not nil, is closed by the Source's
// Close.
func OpenReader(name string, r io.ReaderAt, size int64, closer io.Closer) (Source, error) {
	var head [8]byte
	n := int(min(size, int64(len(head))))
	if err := readFullAt(r, head[:n], 0); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var s *source
	var err error
	switch {
	case bytes.HasPrefix(head[:n], []byte(npyMagic)):
		s, err = openNPY(name, r, size, closer)
	case bytes.HasPrefix(head[:n], []byte("PK")):
		s, err = openNPZ(name, r, size, "", closer)
	case n == 8 && binary.LittleEndian.Uint64(head[:]) < uint64(size):
		s, err = openSafetensors(name, r, size, "", closer)
	default:
		return nil, fmt.Errorf("%s: starts with %q: not .npy, .npz or .safetensors data: %w", name, head[:n], ErrFormat)
	}
	if err != nil {
		return nil, err
	}
	return s, nil
}

// SpecPath returns the file path of an input spec as Open takes it: the
// spec without a ":name" array selection.
func SpecPath(spec string) string {
	path, _ := splitSpec(spec)
	return path
}

// splitSpec splits "path:name" into its parts. A spec naming an existing
// file is a path whole; otherwise it is split at the last ':' when the part
// before it has a known extension.
func splitSpec(spec string) (path, name string) {
	if _, err := os.Stat(spec); err == nil {
		return spec, ""
	}
	i := strings.LastIndexByte(spec, ':')
	if i <= 0 || i == len(spec)-1 {
		return spec, ""
	}
	switch strings.ToLower(filepath.Ext(spec[:i])) {
	case extNPY, extNPZ, extSafetensors:
		return spec[:i], spec[i+1:]
	}
	return spec, ""
}

// ReadAll reads a whole input tensor into memory, for tests and benchmarks.
// It returns the values in C order, the shape as stored and the stored
// dtype. It refuses tensors of more than 1<<30 values with ErrTooLarge.
func ReadAll(spec string) (data []float32, shape []int, dtype DType, err error) {
	s, err := Open(spec)
	if err != nil {
		return nil, nil, 0, err
	}
	defer s.Close()
	n := s.NumSamples()
	t, d := s.SampleShape()
	per := t * d
	if n > 0 && per > maxReadAllValues/n {
		return nil, nil, 0, fmt.Errorf("%s: %d values exceed the ReadAll limit of %d: %w", spec, int64(n)*int64(per), maxReadAllValues, ErrTooLarge)
	}
	data = make([]float32, n*per)
	for i := range n {
		if err := s.ReadSample(i, data[i*per:(i+1)*per]); err != nil {
			return nil, nil, 0, err
		}
	}
	return data, s.Shape(), s.DType(), nil
}

// Metadata returns a copy of the string metadata stored with s (the
// "__metadata__" map of a .safetensors file), or nil when s has none.
func Metadata(s Source) map[string]string {
	if ss, ok := s.(*source); ok && len(ss.meta) > 0 {
		return maps.Clone(ss.meta)
	}
	return nil
}
