package fsutil

import (
	"errors"
	"fmt"
	"io"
	"os"
)

// Spool copies r (standard input, say) into a temporary file in the
// system's temporary directory, for readers that need random access, and
// returns the file, positioned at its start, and its size. The file has no
// name where the platform allows (O_TMPFILE), or loses it at once (a named
// file removed while open); where neither works, close removes it. Call
// close when done.
func Spool(r io.Reader) (f *os.File, size int64, close func() error, err error) {
	dir := os.TempDir()
	f, err = openUnnamed(dir, "standard input")
	name := ""
	if errors.Is(err, errUnnamedUnsupported) {
		if f, name, err = createNamedTemp(dir, "stdin"); err == nil && os.Remove(name) == nil {
			name = ""
		}
	}
	if err != nil {
		return nil, 0, nil, fmt.Errorf("temporary file for standard input: %w", err)
	}
	close = func() error {
		err := f.Close()
		if name != "" {
			os.Remove(name)
		}
		return err
	}
	if size, err = io.Copy(f, r); err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		close()
		return nil, 0, nil, fmt.Errorf("reading standard input: %w", err)
	}
	return f, size, close, nil
}
