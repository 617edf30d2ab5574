package dataset

import (
	"context"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/remote"
)

// Blob is one file of a dataset open for random access.
type Blob interface {
	io.ReaderAt
	// Size returns the file's size in bytes.
	Size() int64
	// Close releases the file.
	Close() error
}

// Store opens the files of a dataset by name (a "/"-separated path
// relative to the dataset's directory): a local directory or an HTTP(S)
// URL. Implementations are safe for concurrent use.
type Store interface {
	// Open opens the named file for random access.
	Open(ctx context.Context, name string) (Blob, error)
	// ReadFile reads the whole named file, refusing one of more than
	// limit bytes.
	ReadFile(ctx context.Context, name string, limit int64) ([]byte, error)
	// Location returns the path or URL of the named file, for messages.
	Location(name string) string
}

// Dir is a Store over a local directory.
type Dir string

// Open implements Store.
func (d Dir) Open(_ context.Context, name string) (Blob, error) {
	f, size, err := fsutil.OpenRegular(d.Location(name))
	if err != nil {
		return nil, err
	}
	return &localBlob{File: f, size: size}, nil
}

// ReadFile implements Store.
func (d Dir) ReadFile(_ context.Context, name string, limit int64) ([]byte, error) {
	f, size, err := fsutil.OpenRegular(d.Location(name))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if size > limit {
		return nil, fmt.Errorf("%s: %d bytes > %d: %w", d.Location(name), size, limit, ErrTooLarge)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(f, b); err != nil {
		return nil, fmt.Errorf("%s: %w", d.Location(name), err)
	}
	return b, nil
}

// Location implements Store.
func (d Dir) Location(name string) string { return filepath.Join(string(d), filepath.FromSlash(name)) }

type localBlob struct {
	*os.File
	size int64
}

func (b *localBlob) Size() int64 { return b.size }

// HTTP is a Store over the directory URL Base, read with Range requests.
type HTTP struct {
	Base    string
	Options *remote.Options
}

// Open implements Store.
func (h HTTP) Open(ctx context.Context, name string) (Blob, error) {
	return remote.Open(ctx, h.Location(name), h.Options)
}

// ReadFile implements Store.
func (h HTTP) ReadFile(ctx context.Context, name string, limit int64) ([]byte, error) {
	return remote.Get(ctx, h.Location(name), limit, h.Options)
}

// Location implements Store.
func (h HTTP) Location(name string) string { return remote.Join(h.Base, name) }

// Kind says what a location names.
type Kind int

// Kinds of location.
const (
	// KindFile is a single .ntcb (or .ntcm) file.
	KindFile Kind = iota
	// KindDataset is a dataset: its directory or its index.json.
	KindDataset
)

// Resolve says what loc names, a path or an http(s) URL: a dataset (a
// directory, a file named *.json, or a URL not ending in .ntcb or .ntcm)
// or a single file. For a dataset it returns the Store of its directory;
// for a file, the Store of the file's directory and the file's name in it.
func Resolve(loc string, o *remote.Options) (Kind, Store, string, error) {
	if remote.IsURL(loc) {
		u := strings.TrimRight(loc, "/")
		base, name := path.Split(u)
		if i := strings.IndexAny(u, "?#"); i >= 0 {
			return 0, nil, "", fmt.Errorf("%s: URLs with a query or fragment are not supported", loc)
		}
		lname := strings.ToLower(name)
		switch {
		case strings.HasSuffix(lname, ".json"):
			return KindDataset, HTTP{Base: base, Options: o}, name, nil
		case strings.HasSuffix(lname, ".ntcb"), strings.HasSuffix(lname, ".ntcm"):
			return KindFile, HTTP{Base: base, Options: o}, name, nil
		}
		return KindDataset, HTTP{Base: u, Options: o}, IndexName, nil
	}
	fi, err := os.Stat(loc)
	if err != nil {
		return 0, nil, "", err
	}
	if fi.IsDir() {
		return KindDataset, Dir(loc), IndexName, nil
	}
	dir, name := filepath.Split(loc)
	if dir == "" {
		dir = "."
	}
	if strings.HasSuffix(strings.ToLower(name), ".json") {
		return KindDataset, Dir(dir), name, nil
	}
	return KindFile, Dir(dir), name, nil
}
