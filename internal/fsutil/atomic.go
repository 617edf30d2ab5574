package fsutil

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// File is a file written atomically to a path: nothing appears at the path
// until Commit succeeds, and then the complete file appears in one step.
//
// On Linux the data goes to an unnamed temporary file (O_TMPFILE) in the
// destination's directory, so an interrupted process (an error, Ctrl-C,
// kill -9, a full disk) leaves nothing behind, not even a temporary file.
// Where O_TMPFILE is not available, a named temporary file
// ".NAME.tmp-ntc-XXXXXXXX" in the same directory is used instead, locked
// while it is written (flock, where the platform has it); Abort removes it,
// and the next Create in that directory that falls back to a named file
// removes those that a killed process left (unlocked ones, or on platforms
// without locks those older than a day).
//
// Use it as
//
//	f, err := fsutil.Create(path, fsutil.CreateOptions{})
//	if err != nil { ... }
//	defer f.Abort() // no-op after a successful Commit
//	... f.Write ...
//	return f.Commit()
type File struct {
	f       *os.File
	path    string // destination
	dir     string
	tmp     string // the named temporary file; "" for an unnamed one
	replace bool
	done    bool // committed or aborted
}

// CreateOptions configure Create. The zero value refuses to replace an
// existing file.
type CreateOptions struct {
	// Replace lets Commit replace a file at the path. Without it, Create
	// fails if the path exists, and so does Commit if a file appeared
	// there meanwhile; both errors wrap fs.ErrExist.
	Replace bool
}

// ForceNamedTemp makes Create use a named temporary file; tests set it to
// exercise the fallback on Linux.
var ForceNamedTemp = false

// tempMarker is in the name of every named temporary file, between the
// destination's name and a random suffix.
const tempMarker = ".tmp-ntc-"

// staleAge is how old a named temporary file must be for Create to remove
// it where the platform cannot tell (by a lock) whether it is in use.
const staleAge = 24 * time.Hour

// Create starts writing a file that Commit will move to path. The
// directory of path must exist. Nothing is created at path itself before
// Commit.
func Create(path string, opts CreateOptions) (*File, error) {
	if !opts.Replace {
		if _, err := os.Lstat(path); err == nil {
			return nil, fmt.Errorf("%s: %w", path, fs.ErrExist)
		}
	}
	dir := filepath.Dir(path)
	fw := &File{path: path, dir: dir, replace: opts.Replace}
	f, err := openUnnamed(dir, path)
	if ForceNamedTemp && err == nil {
		f.Close()
		f, err = nil, errUnnamedUnsupported
	}
	switch {
	case err == nil:
		fw.f = f
	case errors.Is(err, errUnnamedUnsupported):
		removeStale(dir)
		f, tmp, err := createNamedTemp(dir, filepath.Base(path))
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", path, err)
		}
		fw.f, fw.tmp = f, tmp
	default:
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return fw, nil
}

// Write implements io.Writer.
func (f *File) Write(p []byte) (int, error) {
	if f.f == nil {
		return 0, fmt.Errorf("%s: %w", f.path, os.ErrClosed)
	}
	return f.f.Write(p)
}

// OS returns the open temporary file (to Stat or Chmod it).
func (f *File) OS() *os.File { return f.f }

// TempName returns the name of the named temporary file, or "" when the
// file is unnamed.
func (f *File) TempName() string { return f.tmp }

// Commit fsyncs the file, moves it into place at the destination path and
// fsyncs the directory. The file gets the permissions os.Create would give
// it. If Commit fails, the temporary file is removed and the destination
// is left as it was.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: %w", f.path, os.ErrClosed)
	}
	if err := f.commit(); err != nil {
		f.Abort()
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	f.done = true
	return nil
}

func (f *File) commit() error {
	if err := f.f.Sync(); err != nil {
		return err
	}
	if f.tmp == "" {
		if err := linkUnnamed(f.f, f.dir, f.path, f.replace); err != nil {
			return err
		}
		err := f.f.Close()
		f.f = nil
		if err != nil {
			return err
		}
		return SyncDir(f.dir)
	}
	err := f.f.Close()
	f.f = nil
	if err != nil {
		return err
	}
	if f.replace {
		err = os.Rename(f.tmp, f.path)
	} else {
		err = linkNew(f.tmp, f.path)
	}
	if err != nil {
		return err
	}
	f.tmp = "" // nothing left to remove
	return SyncDir(f.dir)
}

// linkNew moves the named file tmp to dest unless dest exists: a hard
// link, which fails if dest exists, then the removal of tmp. Where the
// file system has no hard links it checks and renames, which can race
// with another writer of dest.
func linkNew(tmp, dest string) error {
	err := os.Link(tmp, dest)
	if errors.Is(err, fs.ErrExist) {
		return err
	}
	if err != nil {
		if _, serr := os.Lstat(dest); serr == nil {
			return &os.LinkError{Op: "link", Old: tmp, New: dest, Err: fs.ErrExist}
		}
		return os.Rename(tmp, dest)
	}
	return os.Remove(tmp)
}

// Abort discards the file being written: it closes and removes the
// temporary file. The destination path is not touched. Abort is a no-op
// after Commit or a previous Abort, so it can be deferred.
func (f *File) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	var err error
	if f.f != nil {
		err = f.f.Close()
		f.f = nil
	}
	if f.tmp != "" {
		if rerr := os.Remove(f.tmp); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
		f.tmp = ""
	}
	return err
}

// tempName returns a fresh temporary name for base in dir.
func tempName(dir, base string) string {
	return filepath.Join(dir, "."+base+tempMarker+strconv.FormatUint(rand.Uint64()&0xffffffff, 16))
}

// createNamedTemp creates and locks a new temporary file next to the
// destination, with the permissions os.Create would give it.
func createNamedTemp(dir, base string) (*os.File, string, error) {
	for range 100 {
		name := tempName(dir, base)
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		if err := lock(f); err != nil {
			f.Close()
			os.Remove(name)
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many collisions", dir)
}

// isTempName reports whether name is a named temporary file of Create.
func isTempName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMarker)
}

// removeStale removes the named temporary files in dir that no live
// writer holds: those it can lock, or where locks are not available,
// those older than staleAge. Errors are ignored: this is tidying.
func removeStale(dir string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !e.Type().IsRegular() || !isTempName(e.Name()) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		f, err := os.Open(p)
		if err != nil {
			continue
		}
		var stale bool
		if haveLocks {
			stale = lock(f) == nil
		} else if fi, err := f.Stat(); err == nil {
			stale = time.Since(fi.ModTime()) > staleAge
		}
		if stale {
			os.Remove(p)
		}
		f.Close()
	}
}

// SyncDir fsyncs a directory so that a rename or link in it is durable.
// Windows cannot fsync a directory; there it does nothing.
func SyncDir(dir string) error {
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

// errUnnamedUnsupported means the platform or file system cannot create
// unnamed temporary files; Create falls back to a named one.
var errUnnamedUnsupported = errors.New("unnamed temporary files unsupported")
