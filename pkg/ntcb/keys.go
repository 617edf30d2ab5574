package ntcb

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// FilesOptions configure OpenFilesWith. The zero value keys the samples
// relative to the inputs' common directory.
type FilesOptions struct {
	// KeyRoot is the directory that keys are relative to; empty means the
	// deepest directory that holds every input. An input outside it is an
	// error.
	KeyRoot string
}

// inputKeys returns the key base of each input spec: its path relative to
// root (or to the inputs' common directory when root is empty), with
// slashes, without the file extension, keeping a ":name" array selection
// ("shards/a.npz:tokens" under "." -> "shards/a:tokens"). So keys do not
// depend on how the paths are spelled (/data/x/000.npy and ../x/000.npy
// give 000). Two inputs with the same key base are an error naming both.
func inputKeys(specs []string, root string) ([]string, error) {
	abs := make([]string, len(specs))
	for i, spec := range specs {
		p, err := filepath.Abs(tensorio.SpecPath(spec))
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrInput, spec, err)
		}
		abs[i] = p
	}
	if root == "" {
		root = fsutil.CommonDir(abs)
	} else {
		r, err := filepath.Abs(root)
		if err != nil {
			return nil, fmt.Errorf("%w: key root %s: %w", ErrInput, root, err)
		}
		root = r
	}
	keys := make([]string, len(specs))
	seen := make(map[string]int, len(specs))
	for i, spec := range specs {
		rel, err := filepath.Rel(root, abs[i])
		if err != nil || rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("%w: %s is not under the key root %s", ErrInput, spec, root)
		}
		rel = filepath.ToSlash(rel)
		name := spec[len(tensorio.SpecPath(spec)):]
		keys[i] = strings.TrimSuffix(rel, filepath.Ext(rel)) + name
		if j, dup := seen[keys[i]]; dup {
			return nil, fmt.Errorf("%w: %s and %s both give the sample key %q (keys are paths without their extension): rename one", ErrInput, specs[j], spec, keys[i])
		}
		seen[keys[i]] = i
	}
	return keys, nil
}

// checkBatchKeys reports a key base "a#3" of an unbatched input that a
// batched input with key base "a" also gives to its sample 3.
func checkBatchKeys(f *Files) error {
	bases := make(map[string]int, len(f.inputs))
	for i, in := range f.inputs {
		bases[in.key] = i
	}
	for _, in := range f.inputs {
		k := strings.LastIndexByte(in.key, '#')
		if in.batched || k < 0 {
			continue
		}
		n, err := strconv.Atoi(in.key[k+1:])
		if j, ok := bases[in.key[:k]]; ok && err == nil && f.inputs[j].batched && n >= 0 && n < f.inputs[j].n {
			return fmt.Errorf("%w: %s and sample %d of %s both give the sample key %q: rename one", ErrInput, in.spec, n, f.inputs[j].spec, in.key)
		}
	}
	return nil
}
