package container

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// listDir returns the names in dir, sorted.
func listDir(t testing.TB, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

// writeSome writes a model and two chunks to w.
func writeSome(t testing.TB, w *Writer, tag string) {
	t.Helper()
	if err := w.WriteModel(3, []byte("model "+tag)); err != nil {
		t.Fatal(err)
	}
	for i, k := range []string{"a", "b"} {
		if err := w.WriteChunk(3, bytes.Repeat([]byte(tag), 100*(i+1)), []SampleInfo{{k + tag, 1, 2}}); err != nil {
			t.Fatal(err)
		}
	}
}

// forEachMode runs f with unnamed (where supported) and named temporary files.
func forEachMode(t *testing.T, f func(t *testing.T)) {
	for _, named := range []bool{false, true} {
		name := "unnamed"
		if named {
			name = "named"
		}
		t.Run(name, func(t *testing.T) {
			fsutil.ForceNamedTemp = named
			defer func() { fsutil.ForceNamedTemp = false }()
			f(t)
		})
	}
}

// tempFiles returns the names in dir that look like our temporary files.
func tempFiles(names []string) []string {
	var out []string
	for _, n := range names {
		if strings.Contains(n, ".tmp-") {
			out = append(out, n)
		}
	}
	return out
}

func TestCreateCommit(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.ntcb")
		f, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Abort()
		writeSome(t, f.Writer, "new")
		names := listDir(t, dir)
		if slices.Contains(names, "out.ntcb") {
			t.Fatalf("destination exists before Commit: %v", names)
		}
		if f.af.TempName() == "" && len(names) != 0 {
			t.Errorf("unnamed temporary file has a name: %v", names)
		}
		if err := f.Commit([]byte(`{"k":1}`)); err != nil {
			t.Fatal(err)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"out.ntcb"}) {
			t.Errorf("after Commit: %v", names)
		}
		if err := f.Abort(); err != nil {
			t.Errorf("Abort after Commit: %v", err)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"out.ntcb"}) {
			t.Errorf("Abort after Commit touched the directory: %v", names)
		}
		if err := f.Commit(nil); !errors.Is(err, ErrClosed) {
			t.Errorf("second Commit: %v", err)
		}
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if err := r.Verify(); err != nil {
			t.Fatal(err)
		}
		if r.NumSamples() != 2 || string(r.Metadata()) != `{"k":1}` {
			t.Errorf("read back %d samples, metadata %q", r.NumSamples(), r.Metadata())
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o600 != 0o600 {
			t.Errorf("mode %v", fi.Mode())
		}
	})
}

func TestCreateAbort(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.ntcb")
		f, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		writeSome(t, f.Writer, "x")
		if f.af.TempName() != "" {
			if got := tempFiles(listDir(t, dir)); len(got) != 1 {
				t.Errorf("named temporary files before Abort: %v", got)
			}
		}
		if err := f.Abort(); err != nil {
			t.Fatal(err)
		}
		if names := listDir(t, dir); len(names) != 0 {
			t.Errorf("after Abort: %v", names)
		}
		if err := f.Abort(); err != nil {
			t.Errorf("second Abort: %v", err)
		}
		if err := f.WriteChunk(1, nil, []SampleInfo{{"z", 1, 1}}); !errors.Is(err, ErrClosed) {
			t.Errorf("WriteChunk after Abort: %v", err)
		}
		if err := f.Commit(nil); !errors.Is(err, ErrClosed) {
			t.Errorf("Commit after Abort: %v", err)
		}
	})
}

func TestCreateReplacesOnlyOnCommit(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.ntcb")
		old := []byte("previous contents")
		if err := os.WriteFile(path, old, 0o644); err != nil {
			t.Fatal(err)
		}
		check := func(want []byte) {
			t.Helper()
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if want != nil && !bytes.Equal(got, want) {
				t.Fatalf("destination holds %q, want %q", got, want)
			}
		}

		f, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		writeSome(t, f.Writer, "one")
		check(old)
		if err := f.Abort(); err != nil {
			t.Fatal(err)
		}
		check(old)

		f, err = Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Abort()
		writeSome(t, f.Writer, "two")
		check(old)
		if err := f.Commit(nil); err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if k := r.Sample(0).Key; k != "atwo" {
			t.Errorf("sample 0 is %q after Commit", k)
		}
		if names := listDir(t, dir); !slices.Equal(names, []string{"out.ntcb"}) {
			t.Errorf("directory holds %v", names)
		}
	})
}

// A Commit that fails (here: metadata over the limit) leaves nothing.
func TestCreateFailedCommit(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out.ntcb")
		f, err := Create(path)
		if err != nil {
			t.Fatal(err)
		}
		writeSome(t, f.Writer, "x")
		if err := f.Commit(make([]byte, MaxMetadataSize+1)); !errors.Is(err, ErrTooLarge) {
			t.Fatalf("Commit: %v", err)
		}
		if names := listDir(t, dir); len(names) != 0 {
			t.Errorf("after failed Commit: %v", names)
		}
		if err := f.Abort(); err != nil {
			t.Errorf("Abort after failed Commit: %v", err)
		}
	})
}

func TestCreateMissingDir(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		_, err := Create(filepath.Join(t.TempDir(), "no", "such", "out.ntcb"))
		if !errors.Is(err, os.ErrNotExist) {
			t.Errorf("Create in a missing directory: %v", err)
		}
	})
}
