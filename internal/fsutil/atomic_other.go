//go:build !linux

package fsutil

import "os"

// openUnnamed reports that unnamed temporary files are a Linux feature;
// Create falls back to a named temporary file.
func openUnnamed(dir, name string) (*os.File, error) {
	return nil, errUnnamedUnsupported
}

// linkUnnamed is never called where openUnnamed always fails.
func linkUnnamed(f *os.File, dir, dest string, replace bool) error {
	return errUnnamedUnsupported
}
