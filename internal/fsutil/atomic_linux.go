//go:build linux

package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// openUnnamed opens an unnamed temporary file in dir with O_TMPFILE. The
// file has no name until linkUnnamed gives it one, so if the process dies
// first the kernel frees it. name is used for error messages. It returns
// errUnnamedUnsupported where the kernel or file system lacks O_TMPFILE, or
// where /proc is not mounted (linkUnnamed needs /proc/self/fd).
func openUnnamed(dir, name string) (*os.File, error) {
	fd, err := unix.Open(dir, unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o666)
	if err != nil {
		// Kernels before 3.11 see O_TMPFILE as O_DIRECTORY and fail with
		// EISDIR; file systems without support fail with EOPNOTSUPP.
		if errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EISDIR) || errors.Is(err, unix.EINVAL) {
			return nil, errUnnamedUnsupported
		}
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	if _, err := os.Stat(procFD(fd)); err != nil {
		unix.Close(fd)
		return nil, errUnnamedUnsupported
	}
	return os.NewFile(uintptr(fd), name), nil
}

// procFD returns the /proc path of a file descriptor of this process.
func procFD(fd int) string { return "/proc/self/fd/" + strconv.Itoa(fd) }

// linkUnnamed gives the unnamed file f the name dest. It links f straight
// to dest, which fails with fs.ErrExist if dest exists; with replace it
// then links f to a temporary name in dir and renames that over dest, in
// one atomic step.
func linkUnnamed(f *os.File, dir, dest string, replace bool) error {
	src := procFD(int(f.Fd()))
	err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, dest, unix.AT_SYMLINK_FOLLOW)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return &os.LinkError{Op: "link", Old: src, New: dest, Err: err}
	}
	if !replace {
		return &os.LinkError{Op: "link", Old: src, New: dest, Err: fs.ErrExist}
	}
	base := filepath.Base(dest)
	for range 100 {
		tmp := tempName(dir, base)
		err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, tmp, unix.AT_SYMLINK_FOLLOW)
		if errors.Is(err, unix.EEXIST) {
			continue
		}
		if err != nil {
			return &os.LinkError{Op: "link", Old: src, New: tmp, Err: err}
		}
		if err := os.Rename(tmp, dest); err != nil {
			os.Remove(tmp)
			return err
		}
		return nil
	}
	return &os.LinkError{Op: "link", Old: src, New: dest, Err: errors.New("too many temporary name collisions")}
}
