package dataset

import (
	"context"
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sort"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// BuildOptions configure Build.
type BuildOptions struct {
	// Tool names the program in the index.
	Tool string
	// Meta holds the user's key=value pairs for the index.
	Meta map[string]string
	// Progress, if set, hears of every sample verified.
	Progress Progress
}

// BuildResult describes the index Build wrote.
type BuildResult struct {
	Sizes Sizes `json:"dataset"`
	// Verified counts the shards verified.
	Verified int `json:"shards_verified"`
}

// Build writes the index of the shards already in dir: every *.ntcb file
// there, in name order, written by any number of machines (the steps of a
// distributed encode). Every shard is verified first (every checksum, every
// chunk decoded, its model found by hash among dir's .ntcm files); they
// must share one layout, dtype and codec, and their keys must be unique.
// The index lists the model files the shards use. index.json is written
// last, atomically, only if everything holds.
func Build(ctx context.Context, dir string, o BuildOptions) (*BuildResult, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.ntcb"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("%s: %w: no .ntcb shards", dir, ErrInput)
	}
	models := ntcb.NewModels()
	x := &Index{Format: FormatName, Version: Version, Tool: o.Tool, Meta: o.Meta}
	seen := map[string]int{}
	used := map[[32]byte]string{} // model hash -> the file it was found in
	for i, path := range names {
		name := filepath.Base(path)
		if err := checkName(name); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		f, err := ntcb.Open(path, ntcb.WithModels(models))
		if err != nil {
			return nil, err
		}
		sh, refs, err := buildShard(ctx, f, path, o.Progress)
		f.Close()
		if err != nil {
			return nil, err
		}
		meta := f.Meta()
		if i == 0 {
			x.Codec, x.DType, x.Layout = meta.Codec, meta.DType, meta.Layout
		} else if meta.Codec != x.Codec || meta.DType != x.DType || meta.Layout != x.Layout {
			return nil, fmt.Errorf("%s: %w: codec %s, dtype %s, layout %+v; %s has %s, %s, %+v", path, ErrInput,
				meta.Codec, meta.DType, meta.Layout, names[0], x.Codec, x.DType, x.Layout)
		}
		for j, k := range sh.Keys {
			if prev, ok := seen[k]; ok {
				return nil, fmt.Errorf("%s: %w: key %q (sample %d) is in %s too", path, ErrInput, k, j, filepath.Base(names[prev]))
			}
			seen[k] = i
		}
		for sha, where := range refs {
			used[sha] = where
		}
		x.Shards = append(x.Shards, sh)
		x.Samples += int64(sh.Samples)
	}
	hashes := make([][32]byte, 0, len(used))
	for sha := range used {
		hashes = append(hashes, sha)
	}
	sort.Slice(hashes, func(a, b int) bool { return used[hashes[a]] < used[hashes[b]] })
	for _, sha := range hashes {
		where := used[sha]
		if filepath.Dir(where) != filepath.Clean(dir) {
			return nil, fmt.Errorf("%s: %w: the shards' model was found in %s, outside the dataset's directory", dir, ErrInput, where)
		}
		m, err := ntcb.ReadModelFile(where)
		if err != nil {
			return nil, err
		}
		f, err := fileInfo(where, filepath.Base(where))
		if err != nil {
			return nil, err
		}
		x.Models = append(x.Models, Model{File: f, Codec: m.Codec, ModelSHA256: FormatHash(sha256.Sum256(m.Blob))})
	}
	n, err := WriteIndex(dir, x)
	if err != nil {
		return nil, err
	}
	return &BuildResult{Sizes: SizesOf(x, n), Verified: len(x.Shards)}, nil
}

// buildShard verifies one shard and returns its index entry and the
// models it holds by reference, with where they were found.
func buildShard(ctx context.Context, f *ntcb.File, path string, p Progress) (Shard, map[[32]byte]string, error) {
	if err := f.Verify(ctx, p); err != nil {
		return Shard{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	if _, err := codec.Lookup(f.Meta().Codec); err != nil {
		return Shard{}, nil, fmt.Errorf("%s: %w", path, err)
	}
	fi, err := fileInfo(path, filepath.Base(path))
	if err != nil {
		return Shard{}, nil, err
	}
	sh := Shard{File: fi, Samples: f.Len(), Keys: make([]string, f.Len())}
	for i := range sh.Keys {
		sh.Keys[i] = f.Key(i)
	}
	refs := map[[32]byte]string{}
	for _, m := range f.Container().Models() {
		if m.External {
			refs[m.SHA256] = f.ModelWhere(m.SHA256)
		}
	}
	return sh, refs, nil
}
