package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrSameFile means an output path names one of the inputs.
var ErrSameFile = errors.New("the output is one of the inputs")

// CheckOutput checks, before any work, that a command may write out: that
// it is not one of inputs (the same file, whatever the spelling: a hard
// link, a symbolic link, another path), wrapping ErrSameFile, and that
// nothing exists there unless replace is set, wrapping fs.ErrExist. An
// input that does not exist is skipped (its reader reports it).
func CheckOutput(out string, inputs []string, replace bool) error {
	fo, err := os.Stat(out)
	if errors.Is(err, fs.ErrNotExist) {
		if _, lerr := os.Lstat(out); lerr == nil && !replace {
			return fmt.Errorf("%s: %w (a dangling symbolic link)", out, fs.ErrExist)
		}
		return nil
	}
	if err != nil {
		return err
	}
	if fo.IsDir() {
		return fmt.Errorf("%s: is a directory", out)
	}
	for _, in := range inputs {
		fi, err := os.Stat(in)
		if err == nil && os.SameFile(fo, fi) {
			if filepath.Clean(in) == filepath.Clean(out) {
				return fmt.Errorf("%s: %w", out, ErrSameFile)
			}
			return fmt.Errorf("%s: %w (the same file as %s)", out, ErrSameFile, in)
		}
	}
	if !replace {
		return fmt.Errorf("%s: %w", out, fs.ErrExist)
	}
	return nil
}

// ExtensionWarning returns a warning when path does not end in one of exts
// (compared case-insensitively), or "" when it does. what names the
// format ("an .ntcb file").
func ExtensionWarning(path, what string, exts ...string) string {
	ext := strings.ToLower(filepath.Ext(path))
	for _, e := range exts {
		if ext == e {
			return ""
		}
	}
	if ext == "" {
		return fmt.Sprintf("%s has no extension; %s usually ends in %s", path, what, strings.Join(exts, " or "))
	}
	return fmt.Sprintf("%s ends in %s, but it will be %s (usually %s)", path, ext, what, strings.Join(exts, " or "))
}

// CommonDir returns the deepest directory that holds every path (absolute,
// clean paths): the directory of a file, the parent of directories.
func CommonDir(abs []string) string {
	dir := filepath.Dir(abs[0])
	for _, p := range abs[1:] {
		for !within(p, dir) {
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	return dir
}

// within reports whether path p is inside directory dir.
func within(p, dir string) bool {
	if strings.HasSuffix(dir, string(os.PathSeparator)) {
		return strings.HasPrefix(p, dir)
	}
	return strings.HasPrefix(p, dir+string(os.PathSeparator))
}
