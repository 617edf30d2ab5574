package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"

	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// FileReader reads one .ntcb file opened at a path or an http(s) URL.
type FileReader struct {
	*ntcb.Reader
	blob Blob
	loc  string
}

// Location returns the file's path or URL.
func (f *FileReader) Location() string { return f.loc }

// Close closes the file.
func (f *FileReader) Close() error { return f.blob.Close() }

// OpenFile opens the .ntcb file at loc, a path or an http(s) URL. A model
// the file holds by reference is looked for in o.Models first, then beside
// the file: the model file its metadata names, the models of a dataset
// whose index.json is in the same directory, and for a local file every
// .ntcm file there.
func OpenFile(ctx context.Context, loc string, o *Options) (*FileReader, error) {
	store, name, err := fileStore(loc, o)
	if err != nil {
		return nil, err
	}
	blob, err := store.Open(ctx, name)
	if err != nil {
		return nil, err
	}
	r, err := ntcb.NewReader(blob, blob.Size(), fileReadOptions(ctx, store, name, o)...)
	if err != nil {
		blob.Close()
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	return &FileReader{Reader: r, blob: blob, loc: loc}, nil
}

// VerifyFile checks the .ntcb or .ntcm file at loc (a path or URL) as
// ntcb.VerifyFile does, finding a model held by reference as OpenFile
// does.
func VerifyFile(ctx context.Context, loc string, progress func(total int) ntcb.Progress, o *Options) (ntcb.VerifyReport, error) {
	store, name, err := fileStore(loc, o)
	if err != nil {
		return ntcb.VerifyReport{}, err
	}
	blob, err := store.Open(ctx, name)
	if err != nil {
		return ntcb.VerifyReport{}, err
	}
	defer blob.Close()
	rep, err := ntcb.Verify(ctx, blob, blob.Size(), progress, fileReadOptions(ctx, store, name, o)...)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", loc, err)
	}
	return rep, nil
}

func fileStore(loc string, o *Options) (Store, string, error) {
	kind, store, name, err := Resolve(loc, o.remote())
	if err != nil {
		return nil, "", err
	}
	if kind != KindFile {
		return nil, "", fmt.Errorf("%s: a dataset, not a single file", loc)
	}
	return store, name, nil
}

// fileReadOptions are the ntcb read options of a single file in store.
func fileReadOptions(ctx context.Context, store Store, name string, o *Options) []ntcb.ReadOption {
	opts := []ntcb.ReadOption{ntcb.WithModels(o.models()), ntcb.WithName(store.Location(name))}
	if d, ok := store.(Dir); ok {
		opts = append(opts, ntcb.WithLocator(indexLocator(ctx, store)), ntcb.WithLocator(ntcb.DirLocator(string(d))))
	} else {
		opts = append(opts, ntcb.WithLocator(hintLocator(ctx, store)), ntcb.WithLocator(indexLocator(ctx, store)))
	}
	return opts
}

// hintLocator looks for a model in the model file that the referring
// file's metadata names, in store.
func hintLocator(ctx context.Context, store Store) ntcb.ModelLocator {
	return func(id uint8, sha [32]byte, hint string) ([]byte, string, error) {
		if hint == "" || checkName(hint) != nil {
			return nil, "", nil
		}
		b, err := store.ReadFile(ctx, hint, container.MaxModelSize+1<<20)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, store.Location(hint) + " (not found)", nil
		}
		if err != nil {
			return nil, "", err
		}
		m, err := ntcb.ReadModel(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", store.Location(hint), err)
		}
		return m.Blob, store.Location(hint), nil
	}
}

// indexLocator looks for a model among those of a dataset index in store,
// if there is one.
func indexLocator(ctx context.Context, store Store) ntcb.ModelLocator {
	return func(id uint8, sha [32]byte, _ string) ([]byte, string, error) {
		r, err := OpenStore(ctx, store, IndexName, nil)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		defer r.Close()
		return r.locateModel(id, sha, "")
	}
}
