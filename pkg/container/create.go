package container

import (
	"bufio"
	"fmt"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// createBufSize is the size of a FileWriter's write buffer.
const createBufSize = 1 << 20

// FileWriter writes an .ntcb file to a path atomically: nothing appears at
// the path until Commit succeeds, and then the complete file appears in
// one step (a link, or a rename over the file it replaces).
//
// On Linux the data goes to an unnamed temporary file (O_TMPFILE) in the
// destination's directory, so an interrupted process (an error, Ctrl-C,
// kill -9, a full disk) leaves nothing behind, not even a temporary file.
// Where O_TMPFILE is not available, a named temporary file
// ".NAME.tmp-ntc-XXXXXXXX" in the same directory is used instead, locked
// while it is written; Abort removes it, and the next Create in that
// directory removes one that a killed process left (internal/fsutil).
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
	af   *fsutil.File
	bw   *bufio.Writer
	path string // destination
	done bool   // committed or aborted
}

// Create starts writing an .ntcb file that Commit will move to path,
// replacing any file there. The directory of path must exist. Nothing is
// created at path itself before Commit.
func Create(path string) (*FileWriter, error) { return create(path, true) }

// CreateNew is Create for a path that must not exist: it fails, wrapping
// fs.ErrExist, if something is there, and so does Commit if something
// appeared there meanwhile.
func CreateNew(path string) (*FileWriter, error) { return create(path, false) }

func create(path string, replace bool) (*FileWriter, error) {
	af, err := fsutil.Create(path, fsutil.CreateOptions{Replace: replace})
	if err != nil {
		return nil, err
	}
	fw := &FileWriter{af: af, path: path, bw: bufio.NewWriterSize(af, createBufSize)}
	w, err := NewWriter(fw.bw)
	if err != nil {
		fw.Abort()
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	fw.Writer = w
	return fw, nil
}

// Commit finishes the file (Close with metadata), flushes it, fsyncs it,
// moves it into place at the destination path and fsyncs the directory.
// If Commit fails, the temporary file is removed and the destination is
// left as it was.
func (f *FileWriter) Commit(metadata []byte) error {
	if f.done {
		return fmt.Errorf("commit %s: %w", f.path, ErrClosed)
	}
	err := f.Writer.Close(metadata)
	if err == nil {
		err = f.bw.Flush()
	}
	if err != nil {
		f.Abort()
		return fmt.Errorf("commit %s: %w", f.path, err)
	}
	f.done = true
	return f.af.Commit()
}

// Abort discards the file being written: it closes and removes the
// temporary file. The destination path is not touched. Abort is a no-op
// after Commit or a previous Abort, so it can be deferred.
func (f *FileWriter) Abort() error {
	if f.done {
		return nil
	}
	f.done = true
	err := f.af.Abort()
	if f.Writer != nil && f.Writer.err == nil {
		f.Writer.err = ErrClosed
	}
	return err
}
