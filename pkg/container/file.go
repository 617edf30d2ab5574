package container

import (
	"fmt"
	"os"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// File is a Reader over an open .ntcb file on disk.
type File struct {
	*Reader
	f *os.File
}

// Open opens the .ntcb file at path and reads its header, footer, index and
// metadata (see NewReader). Errors name the path.
func Open(path string) (*File, error) {
	f, size, err := fsutil.OpenRegular(path)
	if err != nil {
		return nil, err
	}
	r, err := NewReader(f, size)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &File{Reader: r, f: f}, nil
}

// Close closes the file. The Reader must not be used afterwards.
func (f *File) Close() error {
	return f.f.Close()
}
