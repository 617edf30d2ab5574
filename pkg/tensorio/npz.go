package tensorio

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
)

// A .npz file is a zip archive of .npy files, one per array, each named after
// its array with ".npy" appended (np.savez stores them, np.savez_compressed
// deflates them). archive/zip parses and validates the archive.

const npySuffix = ".npy"

// openNPZ opens the array called array (or the only one, when array is "")
// of a .npz archive held in r.
func openNPZ(name string, r io.ReaderAt, size int64, array string, closer io.Closer) (*source, error) {
	var magic [4]byte
	if size < int64(len(magic)) {
		return nil, fmt.Errorf("%s: npz: file of %d bytes is too short for a zip archive: %w", name, size, ErrFormat)
	}
	if err := readFullAt(r, magic[:], 0); err != nil {
		return nil, fmt.Errorf("%s: npz: %w", name, err)
	}
	if !bytes.HasPrefix(magic[:], []byte("PK")) {
		return nil, fmt.Errorf("%s: npz: bad magic %q (not a zip archive)%s: %w", name, magic[:], magicHint(magic[:]), ErrFormat)
	}
	zr, err := zip.NewReader(r, size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) { // nothing is extracted to disk
		return nil, fmt.Errorf("%s: npz: %v: %w", name, err, ErrFormat)
	}
	var entries []*zip.File
	for _, f := range zr.File {
		if !strings.HasSuffix(f.Name, "/") {
			entries = append(entries, f)
		}
	}
	arrayName := func(f *zip.File) string { return strings.TrimSuffix(f.Name, npySuffix) }
	var f *zip.File
	if array == "" {
		switch len(entries) {
		case 0:
			return nil, fmt.Errorf("%s: npz: holds no arrays: %w", name, ErrNotFound)
		case 1:
			f = entries[0]
		default:
			return nil, fmt.Errorf("%s: npz: holds %d arrays, name one as %s:NAME (%s): %w",
				name, len(entries), name, listNames(entries, arrayName), ErrNotFound)
		}
	} else {
		for _, e := range entries {
			if e.Name == array || e.Name == array+npySuffix {
				if f != nil {
					return nil, fmt.Errorf("%s: npz: several entries named %q: %w", name, e.Name, ErrFormat)
				}
				f = e
			}
		}
		if f == nil {
			return nil, fmt.Errorf("%s: npz: no array %q (arrays: %s): %w", name, array, listNames(entries, arrayName), ErrNotFound)
		}
	}
	ename := name
	if array == "" {
		ename = name + ":" + arrayName(f)
	}
	s, err := openNPZEntry(ename, r, size, f)
	if err != nil {
		return nil, err
	}
	s.name, s.closer = name, closer
	return s, nil
}

// openNPZEntry opens one .npy entry: a stored entry is read in place at
// random, a deflated one as a stream.
func openNPZEntry(ename string, r io.ReaderAt, size int64, f *zip.File) (*source, error) {
	const flagEncrypted = 0x1
	if f.Flags&flagEncrypted != 0 {
		return nil, fmt.Errorf("%s: npz: entry %q is encrypted: %w", ename, f.Name, ErrFormat)
	}
	if f.UncompressedSize64 > math.MaxInt64 {
		return nil, fmt.Errorf("%s: npz: entry %q declares %d bytes: %w", ename, f.Name, f.UncompressedSize64, ErrTooLarge)
	}
	usize := int64(f.UncompressedSize64)
	switch f.Method {
	case zip.Store:
		off, err := f.DataOffset()
		if err != nil {
			return nil, fmt.Errorf("%s: npz: entry %q: %v: %w", ename, f.Name, err, ErrFormat)
		}
		if f.CompressedSize64 != f.UncompressedSize64 {
			return nil, fmt.Errorf("%s: npz: stored entry %q has compressed size %d != size %d: %w",
				ename, f.Name, f.CompressedSize64, f.UncompressedSize64, ErrFormat)
		}
		if off < 0 || off > size || usize > size-off {
			return nil, fmt.Errorf("%s: npz: entry %q of %d bytes at offset %d beyond the end of a %d-byte file: %w",
				ename, f.Name, usize, off, size, ErrTruncated)
		}
		h, err := readNPYHeader(io.NewSectionReader(r, off, usize), usize)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", ename, err)
		}
		return &source{
			dtype: h.dtype,
			l:     h.l,
			data:  &atReader{r: r, base: off + h.dataOff, size: h.l.dataBytes},
		}, nil
	case zip.Deflate:
		rc, err := f.Open()
		if err != nil {
			return nil, fmt.Errorf("%s: npz: entry %q: %v: %w", ename, f.Name, err, ErrFormat)
		}
		h, err := readNPYHeader(rc, usize)
		if err != nil {
			rc.Close()
			return nil, fmt.Errorf("%s: %w", ename, err)
		}
		return &source{
			dtype: h.dtype,
			l:     h.l,
			data:  &streamReader{open: f.Open, rc: rc, pos: h.dataOff, base: h.dataOff, size: h.l.dataBytes},
		}, nil
	}
	return nil, fmt.Errorf("%s: npz: entry %q uses compression method %d; only stored and deflated entries are supported: %w",
		ename, f.Name, f.Method, ErrFormat)
}
