package tensorio

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Expand expands command-line inputs into sorted, de-duplicated specs for
// Open. Each argument is, in this order of preference:
//
//   - the path of an existing file, taken whole (even if it holds ':' or
//     glob characters);
//   - the path of a directory: the token files (.npy, .npz, .safetensors)
//     in it and in its subdirectories, names starting with '.' skipped;
//   - a glob pattern (filepath.Match syntax) matching files;
//   - a glob pattern or path followed by ":name", the name being kept on
//     every match ("shards/*.npz:tokens").
//
// Directories that a glob matches are skipped. An argument that matches
// no file (a directory without token files included) is an error naming
// it, wrapping ErrNotFound; a malformed pattern is an error too.
// Specs are sorted as strings ("s10" before "s2").
func Expand(args []string) ([]string, error) {
	var out []string
	for _, arg := range args {
		specs, err := expandOne(arg)
		if err != nil {
			return nil, err
		}
		out = append(out, specs...)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

func expandOne(arg string) ([]string, error) {
	if arg == "" {
		return nil, fmt.Errorf("empty input name: %w", ErrNotFound)
	}
	if isFile(arg) {
		return []string{arg}, nil
	}
	if fi, err := os.Stat(arg); err == nil && fi.IsDir() {
		files, err := tokenFiles(arg)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("%s: a directory without .npy, .npz or .safetensors files: %w", arg, ErrNotFound)
		}
		return files, nil
	}
	matches, err := globFiles(arg)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", arg, err)
	}
	if len(matches) > 0 {
		return matches, nil
	}
	if i := strings.LastIndexByte(arg, ':'); i > 0 && i < len(arg)-1 {
		pattern, name := arg[:i], arg[i+1:]
		if isFile(pattern) {
			return []string{arg}, nil
		}
		matches, err := globFiles(pattern)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", arg, err)
		}
		for j, m := range matches {
			matches[j] = m + ":" + name
		}
		if len(matches) > 0 {
			return matches, nil
		}
	}
	return nil, fmt.Errorf("%s: matches no file: %w", arg, ErrNotFound)
}

// tokenFiles returns the files with a token file extension in dir and its
// subdirectories, skipping names that start with '.' (hidden files, and
// the temporary files of writers).
func tokenFiles(dir string) ([]string, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != dir && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		switch strings.ToLower(filepath.Ext(p)) {
		case extNPY, extNPZ, extSafetensors:
			if isFile(p) {
				files = append(files, p)
			}
		}
		return nil
	})
	return files, err
}

func isFile(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && !fi.IsDir()
}

// globFiles returns the files (not directories) matching pattern.
func globFiles(pattern string) ([]string, error) {
	matches, err := filepath.Glob(pattern)
	if err != nil {
		return nil, fmt.Errorf("bad pattern: %w", err)
	}
	files := matches[:0]
	for _, m := range matches {
		if isFile(m) {
			files = append(files, m)
		}
	}
	return files, nil
}
