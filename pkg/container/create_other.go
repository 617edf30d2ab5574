//go:build !linux

package container

import (
	"os"
	"runtime"
)

// openUnnamed reports that unnamed temporary files are a Linux feature;
// Create falls back to a named temporary file.
func openUnnamed(dir, name string) (*os.File, error) {
	return nil, errUnnamedUnsupported
}

// linkUnnamed is never called where openUnnamed always fails.
func linkUnnamed(f *os.File, dir, dest string) error {
	return errUnnamedUnsupported
}

// syncDir fsyncs a directory so that a rename in it is durable. Windows
// cannot fsync a directory; there it does nothing.
func syncDir(dir string) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}
