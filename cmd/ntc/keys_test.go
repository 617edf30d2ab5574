package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// inspectKeys returns the sample keys of an .ntcb file from
// 'ntc inspect --json --keys'.
func inspectKeys(t *testing.T, path string) []string {
	t.Helper()
	code, out, errs := ntc(t, "inspect", path, "--json", "--keys")
	var info struct {
		Keys []string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil {
		t.Fatalf("inspect --json --keys: %d %v %s", code, err, errs)
	}
	return info.Keys
}

// copySample writes the embedded sample (a batch of samples) to path.
func copySample(t *testing.T, in, path string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, mustRead(t, in), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestKeys checks sample keys: relative to --key-root, by default the
// inputs' common directory, so that they do not depend on how a path is
// spelled; inputs that would share keys are an error naming both; a key
// with a comma can be selected (--key, --keys-file); inspect --json
// --keys lists them.
func TestKeys(t *testing.T) {
	dir, in := writeSample(t)
	x := filepath.Join(dir, "x", "000.npy")
	copySample(t, in, x)
	n := len(inspectKeys(t, encodeSample(t, dir, in, "n.ntcb")))
	if n == 0 {
		t.Fatal("inspect --json --keys lists no keys")
	}

	// The same file spelled two ways gives the same keys.
	abs := filepath.Join(dir, "abs.ntcb")
	if code, _, errs := ntc(t, "encode", x, "-o", abs, "--codec", "int8"); code != 0 {
		t.Fatal(errs)
	}
	t.Chdir(filepath.Join(dir, "x"))
	rel := filepath.Join(dir, "rel.ntcb")
	if code, _, errs := ntc(t, "encode", "../x/000.npy", "-o", rel, "--codec", "int8"); code != 0 {
		t.Fatal(errs)
	}
	ka, kr := inspectKeys(t, abs), inspectKeys(t, rel)
	if !slices.Equal(ka, kr) || len(ka) != n || ka[0] != "000#0" {
		t.Fatalf("keys of %s: %q; of ../x/000.npy: %q", x, ka, kr)
	}

	// Keys below the common directory, or below --key-root.
	a, b := filepath.Join(dir, "s", "a", "p.npy"), filepath.Join(dir, "s", "b", "q.npy")
	copySample(t, in, a)
	copySample(t, in, b)
	two := filepath.Join(dir, "two.ntcb")
	if code, _, errs := ntc(t, "encode", a, b, "-o", two, "--codec", "int8"); code != 0 {
		t.Fatal(errs)
	}
	if k := inspectKeys(t, two); k[0] != "a/p#0" || k[n] != "b/q#0" {
		t.Fatalf("keys %q", k)
	}
	if code, _, errs := ntc(t, "encode", a, b, "-o", two, "-f", "--codec", "int8", "--key-root", dir); code != 0 {
		t.Fatal(errs)
	}
	if k := inspectKeys(t, two); k[0] != "s/a/p#0" || k[n] != "s/b/q#0" {
		t.Fatalf("keys with --key-root: %q", k)
	}
	code, _, errs := ntc(t, "encode", a, b, "-o", filepath.Join(dir, "no.ntcb"), "--codec", "int8", "--key-root", filepath.Dir(a))
	if code != exitError || !strings.Contains(errs, "q.npy") || !strings.Contains(errs, "key root") {
		t.Fatalf("an input outside --key-root: %d %s", code, errs)
	}

	// Two inputs with the same key: an error naming both.
	y1, y2 := filepath.Join(dir, "y.npy"), filepath.Join(dir, "y.safetensors")
	copySample(t, in, y1)
	if code, _, errs := ntc(t, "decode", abs, "-o", y2, "--dtype", "float16"); code != 0 {
		t.Fatal(errs)
	}
	code, _, errs = ntc(t, "encode", y2, y1, "-o", filepath.Join(dir, "y.ntcb"), "--codec", "int8")
	if code != exitError || !strings.Contains(errs, "y.npy") || !strings.Contains(errs, "y.safetensors") || !strings.Contains(errs, `"y"`) {
		t.Fatalf("colliding keys: %d %s", code, errs)
	}

	// A key with a comma: --key takes it whole, so does a keys file.
	c := filepath.Join(dir, "k,1.npy")
	copySample(t, in, c)
	ck := filepath.Join(dir, "comma.ntcb")
	if code, _, errs := ntc(t, "encode", c, "-o", ck, "--codec", "int8"); code != 0 {
		t.Fatal(errs)
	}
	keys := filepath.Join(dir, "keys.txt")
	if err := os.WriteFile(keys, []byte("k,1#2\n\nk,1#0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, sel := range [][]string{{"--key", "k,1#1"}, {"--key", "k,1#1", "--key", "k,1#0"}, {"--keys-file", keys}} {
		out := filepath.Join(dir, "sel.npy")
		os.Remove(out)
		if code, _, errs := ntc(t, append([]string{"decode", ck, "-o", out}, sel...)...); code != 0 {
			t.Fatalf("decode %v: %d %s", sel, code, errs)
		}
	}
}
