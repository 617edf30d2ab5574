package container

import (
	"bufio"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
)

// createBufSize is the size of a FileWriter's write buffer.
const createBufSize = 1 << 20

// FileWriter writes an .ntcb file to a path atomically: nothing appears at
// the path until Commit succeeds, and then the complete file replaces
// whatever was there in one rename.
//
// On Linux the data goes to an unnamed temporary file (O_TMPFILE) in the
// destination's directory, so an interrupted process (an error, Ctrl-C,
// kill -9, a full disk) leaves nothing behind, not even a temporary file.
// Where O_TMPFILE is not available, a named temporary file
// ".NAME.tmp-XXXXXXXX" in the same directory is used instead; Abort removes
// it, but a process killed before Abort runs leaves it behind.
//
// Use it as
//
//	f, err := container.Create(path)
//	if err != nil { ... }
//	defer f.Abort() // no-op after a successful Commit
//	... f.WriteModel, f.WriteChunk ...
//	return f.Commit(metadata)
//
// Call Commit, not the embedded Writer's Close.
type FileWriter struct {
	*Writer
	f    *os.File
	bw   *bufio.Writer
	path string // destination
	dir  string
	// tmp is the named temporary file; "" for an unnamed one.
	tmp  string
	done bool // committed or aborted
}

// Create starts writing an .ntcb file that Commit will move to path. The
// directory of path must exist. Nothing is created at path itself before
// Commit.
func Create(path string) (*FileWriter, error) {
	dir := filepath.Dir(path)
	fw := &FileWriter{path: path, dir: dir}
	f, err := openUnnamed(dir, path)
	if forceNamedTemp && err == nil {
		f.Close()
		f, err = nil, errUnnamedUnsupported
	}
	switch {
	case err == nil:
		fw.f = f
	case errors.Is(err, errUnnamedUnsupported):
		f, tmp, err := createNamedTemp(dir, filepath.Base(path))
		if err != nil {
			return nil, err
		}
		fw.f, fw.tmp = f, tmp
	default:
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fw.bw = bufio.NewWriterSize(fw.f, createBufSize)
	w, err := NewWriter(fw.bw)
	if err != nil {
		fw.Abort()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fw.Writer = w
	return fw, nil
}

// Commit finishes the file (Close with metadata), flushes it, fsyncs it,
// moves it into place at the destination path, replacing any file there,
// and fsyncs the directory. If Commit fails, the temporary file is removed
// and the destination is left as it was.
func (f *FileWriter) Commit(metadata []byte) error {
	if f.done {
		return fmt.Errorf("commit %s: %w", f.path, ErrClosed)
	}
	err := f.commit(metadata)
	if err != nil {
		f.Abort()
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	f.done = true
	return nil
}

func (f *FileWriter) commit(metadata []byte) error {
	if err := f.Writer.Close(metadata); err != nil {
		return err
	}
	if err := f.bw.Flush(); err != nil {
		return err
	}
	if err := f.f.Sync(); err != nil {
		return err
	}
	if f.tmp == "" {
		if err := linkUnnamed(f.f, f.dir, f.path); err != nil {
			return err
		}
		err := f.f.Close()
		f.f = nil
		if err != nil {
			return err
		}
	} else {
		err := f.f.Close()
		f.f = nil
		if err != nil {
			return err
		}
		if err := os.Rename(f.tmp, f.path); err != nil {
			return err
		}
		f.tmp = "" // nothing left to remove
	}
	return syncDir(f.dir)
}

// Abort discards the file being written: it closes and removes the
// temporary file. The destination path is not touched. Abort is a no-op
// after Commit or a previous Abort, so it can be deferred.
func (f *FileWriter) Abort() error {
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
	if f.Writer != nil && f.Writer.err == nil {
		f.Writer.err = ErrClosed
	}
	return err
}

// tempName returns a fresh temporary name for base in dir.
func tempName(dir, base string) string {
	return filepath.Join(dir, "."+base+".tmp-"+strconv.FormatUint(rand.Uint64()&0xffffffff, 16))
}

// createNamedTemp creates a new temporary file next to the destination,
// with the permissions os.Create would give it.
func createNamedTemp(dir, base string) (*os.File, string, error) {
	for range 100 {
		name := tempName(dir, base)
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o666)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, "", err
		}
		return f, name, nil
	}
	return nil, "", fmt.Errorf("create temporary file in %s: too many collisions", dir)
}

// errUnnamedUnsupported means the platform or file system cannot create
// unnamed temporary files; Create falls back to a named one.
var errUnnamedUnsupported = errors.New("unnamed temporary files unsupported")

// forceNamedTemp makes Create use a named temporary file; tests set it to
// exercise the fallback on Linux.
var forceNamedTemp = false
