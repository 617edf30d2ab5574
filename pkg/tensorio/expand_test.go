package tensorio

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestExpand(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"s10.npz", "s2.npz", "s1.npz", "a.npy", "b.safetensors", "odd:name.npy", "lit[1].npy"} {
		writeFile(t, dir, name, nil)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.npz"), 0o755); err != nil {
		t.Fatal(err)
	}
	j := func(s ...string) []string {
		for i := range s {
			s[i] = filepath.Join(dir, s[i])
		}
		return s
	}
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"glob sorted", j("s*.npz"), j("s1.npz", "s10.npz", "s2.npz")},
		{"glob with name", j("s*.npz:tokens"), j("s1.npz:tokens", "s10.npz:tokens", "s2.npz:tokens")},
		{"literal with name", j("b.safetensors:x"), j("b.safetensors:x")},
		{"duplicates", append(j("a.npy", "*.npy"), j("a.npy")...), j("a.npy", "lit[1].npy", "odd:name.npy")},
		{"colon in name", j("odd:name.npy"), j("odd:name.npy")},
		{"glob characters in an existing name", j("lit[1].npy"), j("lit[1].npy")},
		{"directories skipped", j("s*"), j("s1.npz", "s10.npz", "s2.npz")},
		{"none", nil, nil},
	} {
		got, err := Expand(tc.args)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: Expand(%q) = %q, %v; want %q", tc.name, tc.args, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		msg  string
		want error
	}{
		{j("a.npy", "x*.npz"), "x*.npz: matches no file", ErrNotFound},
		{j("missing.npy"), "missing.npy: matches no file", ErrNotFound},
		{j("sub.npz"), "sub.npz: a directory without", ErrNotFound},
		{[]string{""}, "empty input name", ErrNotFound},
		{j("[.npy"), "bad pattern", filepath.ErrBadPattern},
	} {
		_, err := Expand(tc.args)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("Expand(%q) = %v, want %v saying %q", tc.args, err, tc.want, tc.msg)
		}
	}
}

// TestExpandDirectory checks that a directory stands for its token files
// and those of its subdirectories, sorted, without hidden names.
func TestExpandDirectory(t *testing.T) {
	dir := t.TempDir()
	for _, name := range []string{"d/b/2.npy", "d/1.npz", "d/a/3.safetensors", "d/.hidden.npy", "d/notes.txt", "d/.tmp/4.npy", "d/c/.x.npy.tmp-ntc-1"} {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, dir, name, nil)
	}
	d := filepath.Join(dir, "d")
	got, err := Expand([]string{d})
	want := []string{filepath.Join(d, "1.npz"), filepath.Join(d, "a", "3.safetensors"), filepath.Join(d, "b", "2.npy")}
	if err != nil || !slices.Equal(got, want) {
		t.Fatalf("Expand(%s) = %q, %v; want %q", d, got, err, want)
	}
	if _, err := Expand([]string{filepath.Join(d, "c")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a directory without token files: %v", err)
	}
}

func TestSplitSpec(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "odd:name.npy", nil)
	for _, tc := range []struct{ spec, path, name string }{
		{"a.npz:tokens", "a.npz", "tokens"},
		{"a.safetensors:layer.10:x", "a.safetensors:layer.10:x", ""},
		{"a.SAFETENSORS:blocks.10.out", "a.SAFETENSORS", "blocks.10.out"},
		{"a.npz:", "a.npz:", ""},
		{"a.npz:dir/entry", "a.npz", "dir/entry"},
		{"c:/data/a.npy", "c:/data/a.npy", ""},
		{filepath.Join(dir, "odd:name.npy"), filepath.Join(dir, "odd:name.npy"), ""},
	} {
		if p, n := splitSpec(tc.spec); p != tc.path || n != tc.name {
			t.Errorf("splitSpec(%q) = %q, %q; want %q, %q", tc.spec, p, n, tc.path, tc.name)
		}
	}
}
