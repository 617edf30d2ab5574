package fsutil

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// names returns the entries of dir, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

// forEachMode runs f with unnamed (where supported) and named temporary
// files.
func forEachMode(t *testing.T, f func(t *testing.T)) {
	for _, named := range []bool{false, true} {
		t.Run(map[bool]string{false: "unnamed", true: "named"}[named], func(t *testing.T) {
			ForceNamedTemp = named
			defer func() { ForceNamedTemp = false }()
			f(t)
		})
	}
}

func writeFile(t *testing.T, path string, opts CreateOptions, data string) error {
	t.Helper()
	f, err := Create(path, opts)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write([]byte(data)); err != nil {
		t.Fatal(err)
	}
	return f.Commit()
}

// TestCreateReplace checks that a file is replaced only with Replace, also
// when it appears while the new one is written.
func TestCreateReplace(t *testing.T) {
	forEachMode(t, func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "out")
		if err := writeFile(t, p, CreateOptions{}, "one"); err != nil {
			t.Fatal(err)
		}
		if err := writeFile(t, p, CreateOptions{}, "two"); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("second Create without Replace: %v", err)
		}
		if err := writeFile(t, p, CreateOptions{Replace: true}, "three"); err != nil {
			t.Fatal(err)
		}
		// A file that appears during the write is not replaced either.
		q := filepath.Join(dir, "late")
		f, err := Create(q, CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("mine"))
		if err := os.WriteFile(q, []byte("theirs"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := f.Commit(); !errors.Is(err, fs.ErrExist) {
			t.Fatalf("Commit over a file that appeared: %v", err)
		}
		for path, want := range map[string]string{p: "three", q: "theirs"} {
			if b, _ := os.ReadFile(path); string(b) != want {
				t.Errorf("%s holds %q, want %q", path, b, want)
			}
		}
		if got := names(t, dir); !slices.Equal(got, []string{"late", "out"}) {
			t.Errorf("directory holds %v", got)
		}
		if fi, _ := os.Stat(p); fi.Mode().Perm()&0o044 == 0 {
			t.Errorf("mode %v: not the permissions os.Create gives", fi.Mode())
		}
	})
}

// staleChildEnv makes the test binary a child that leaves a named
// temporary file in the directory it names and exits without cleaning up,
// as a killed writer does.
const staleChildEnv = "NTC_FSUTIL_STALE_CHILD_DIR"

// TestStaleTempRemoved checks the named fallback's cleaning: a temporary
// file that a dead process left is removed by the next Create in that
// directory, one that a live writer holds is not.
func TestStaleTempRemoved(t *testing.T) {
	if dir := os.Getenv(staleChildEnv); dir != "" {
		ForceNamedTemp = true
		f, err := Create(filepath.Join(dir, "dead.npy"), CreateOptions{})
		if err != nil {
			println(err.Error())
			os.Exit(1)
		}
		f.Write([]byte("partial"))
		os.Exit(0) // no Abort: what SIGKILL leaves
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestStaleTempRemoved$", "-test.count=1")
	cmd.Env = append(os.Environ(), staleChildEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v %s", err, out)
	}
	left := names(t, dir)
	if len(left) != 1 || !strings.Contains(left[0], ".tmp-ntc-") {
		t.Fatalf("the child left %v, want its temporary file", left)
	}
	ForceNamedTemp = true
	defer func() { ForceNamedTemp = false }()
	live, err := Create(filepath.Join(dir, "live.npy"), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Abort()
	got := names(t, dir)
	if slices.Contains(got, left[0]) || len(got) != 1 || got[0] != filepath.Base(live.TempName()) {
		t.Fatalf("after the next Create the directory holds %v (the dead writer's was %s)", got, left[0])
	}
	// A third writer leaves the live one's file alone.
	other, err := Create(filepath.Join(dir, "other.npy"), CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Abort()
	if _, err := os.Stat(live.TempName()); err != nil {
		t.Fatalf("a live writer's temporary file was removed: %v", err)
	}
	if err := live.Commit(); err != nil {
		t.Fatal(err)
	}
	other.Abort()
	if got := names(t, dir); !slices.Equal(got, []string{"live.npy"}) {
		t.Fatalf("directory holds %v", got)
	}
}

func TestCheckOutput(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in.npy")
	if err := os.WriteFile(in, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	hard := filepath.Join(dir, "hard.npy")
	soft := filepath.Join(dir, "soft.npy")
	if err := os.Link(in, hard); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("in.npy", soft); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "other.ntcb")
	os.WriteFile(other, nil, 0o644)
	sub := filepath.Join(dir, "sub")
	os.Mkdir(sub, 0o755)
	cases := []struct {
		out     string
		replace bool
		want    error
	}{
		{in, true, ErrSameFile},
		{filepath.Join(dir, ".", "in.npy"), true, ErrSameFile},
		{hard, true, ErrSameFile},
		{soft, true, ErrSameFile},
		{other, false, fs.ErrExist},
		{other, true, nil},
		{filepath.Join(dir, "new.ntcb"), false, nil},
	}
	for _, c := range cases {
		err := CheckOutput(c.out, []string{in, filepath.Join(dir, "missing.npy")}, c.replace)
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("CheckOutput(%s, replace %v) = %v, want %v", c.out, c.replace, err, c.want)
		}
	}
	if err := CheckOutput(sub, nil, true); err == nil {
		t.Error("a directory as the output accepted")
	}
}

func TestExtensionWarning(t *testing.T) {
	if w := ExtensionWarning("a/x.NTCB", "an .ntcb file", ".ntcb"); w != "" {
		t.Error(w)
	}
	for _, p := range []string{"out.txt", "o.npy", "noext"} {
		if w := ExtensionWarning(p, "an .ntcb file", ".ntcb"); !strings.Contains(w, p) || !strings.Contains(w, ".ntcb") {
			t.Errorf("%s: %q", p, w)
		}
	}
}
