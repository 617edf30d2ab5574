// Package fsutil holds the file handling that ntc's readers and writers
// share: regular-file checks, atomic output files, output checks.
package fsutil

import (
	"fmt"
	"os"
)

// OpenRegular opens path for reading and returns it with its size. It
// refuses anything but a regular file (a directory, a device, a FIFO), so
// that readers can trust the size they check every length against.
func OpenRegular(path string) (*os.File, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, 0, fmt.Errorf("%s: not a regular file", path)
	}
	return f, fi.Size(), nil
}
