package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/internal/testhttp"
)

func TestDatasetCommands(t *testing.T) {
	dir, in := writeSample(t)
	ds := filepath.Join(dir, "ds")
	code, out, errs := ntc(t, "encode", in, "-o", ds, "--shard-samples", "3", "--codec", "fp16")
	if code != 0 || !strings.Contains(out, "8 samples in 3 shards") || !strings.Contains(out, "over the shards alone") {
		t.Fatalf("encode -o DIR: %d %q %q", code, out, errs)
	}
	for _, loc := range []string{ds, ds + "/", filepath.Join(ds, "index.json")} {
		if code, out, errs := ntc(t, "inspect", loc, "--chunks"); code != 0 || !strings.Contains(out, "shard-00002.ntcb") || !strings.Contains(out, "in 3 shards") {
			t.Fatalf("inspect %s: %d %q %q", loc, code, out, errs)
		}
	}
	code, out, _ = ntc(t, "inspect", ds, "--json", "--keys")
	var info struct {
		Sizes struct {
			Samples int     `json:"samples"`
			Ratio   float64 `json:"ratio"`
		} `json:"sizes"`
		Keys []string `json:"keys"`
	}
	if err := json.Unmarshal([]byte(out), &info); code != 0 || err != nil || info.Sizes.Samples != 8 || len(info.Keys) != 8 || info.Sizes.Ratio < 1 {
		t.Fatalf("inspect --json: %d %v %+v", code, err, info)
	}
	if code, out, errs := ntc(t, "verify", ds); code != 0 || !strings.Contains(out, "8 samples in 3 shards") {
		t.Fatalf("verify DIR: %d %q %q", code, out, errs)
	}
	// The dataset decodes to its input, whole and by key.
	y := filepath.Join(dir, "y.npy")
	if code, _, errs := ntc(t, "decode", ds, "-o", y); code != 0 {
		t.Fatalf("decode DIR: %d %s", code, errs)
	}
	if a, b := mustRead(t, in), mustRead(t, y); !bytes.Equal(a, b) {
		t.Fatal("the dataset decodes to something else than its input")
	}
	if code, _, errs := ntc(t, "decode", ds, "-o", y, "--force", "--keys", info.Keys[7]+","+info.Keys[0]); code != 0 {
		t.Fatalf("decode --keys: %d %s", code, errs)
	}
	// Appending: new keys only, the index grows.
	if code, _, errs := ntc(t, "encode", in, "-o", ds, "--append", "--codec", "fp16"); code != exitError || !strings.Contains(errs, "in the dataset already") {
		t.Fatalf("append of the same keys: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", ds, "--shard-samples", "3"); code != exitError || !strings.Contains(errs, "--append") || !strings.Contains(errs, "--force") {
		t.Fatalf("a second encode into the dataset: %d %s", code, errs)
	}
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	in2, err := sample.WriteTo(other)
	if err != nil {
		t.Fatal(err)
	}
	if code, out, errs := ntc(t, "encode", in2, "-o", ds, "--append", "--shard-samples", "4", "--key-root", dir); code != 0 || !strings.Contains(out, "16 samples in 5 shards (2 written)") {
		t.Fatalf("append: %d %q %q", code, out, errs)
	}
	if code, out, errs := ntc(t, "verify", ds); code != 0 || !strings.Contains(out, "16 samples in 5 shards") {
		t.Fatalf("verify after append: %d %q %q", code, out, errs)
	}
	// A damaged shard exits 3 and names the shard.
	shard := filepath.Join(ds, "shard-00001.ntcb")
	b := mustRead(t, shard)
	b[len(b)/2] ^= 1
	os.WriteFile(shard, b, 0o644)
	if code, _, errs := ntc(t, "verify", ds); code != exitCorrupt || !strings.Contains(errs, "shard-00001.ntcb") {
		t.Fatalf("verify of a damaged dataset: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", ds, "--embed-model", "--model", "x.ntcm"); code != exitUsage {
		t.Fatalf("--embed-model into a dataset: %d %s", code, errs)
	}
}

// TestModelByReferenceCLI fits a model, encodes with it by reference, and
// reads the file with the model next to it, named, and missing.
func TestModelByReferenceCLI(t *testing.T) {
	dir, in := writeSample(t)
	m := filepath.Join(dir, "m.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", m, "--ratio", "8"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	x := filepath.Join(dir, "x.ntcb")
	if code, out, errs := ntc(t, "encode", in, "-o", x, "--model", m); code != 0 || errs != "" {
		t.Fatalf("encode --model: %d %q %q", code, out, errs)
	}
	code, out, _ := ntc(t, "inspect", x)
	if code != 0 || !strings.Contains(out, "model by reference") || !strings.Contains(out, "m.ntcm") {
		t.Fatalf("inspect: %d %s", code, out)
	}
	if code, out, errs := ntc(t, "verify", x); code != 0 || !strings.Contains(out, "model by reference found in "+m) {
		t.Fatalf("verify: %d %q %q", code, out, errs)
	}
	moved := filepath.Join(t.TempDir(), "x.ntcb")
	os.WriteFile(moved, mustRead(t, x), 0o644)
	code, _, errs := ntc(t, "verify", moved)
	if code != exitError || !strings.Contains(errs, "model not found") || !strings.Contains(errs, "sha256 ") {
		t.Fatalf("verify without the model: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "decode", moved, "-o", filepath.Join(dir, "y.npy"), "--model", m); code != 0 {
		t.Fatalf("decode --model: %d %s", code, errs)
	}
	// --embed-model: today's files, readable alone; the note about where
	// the model must stay comes only for a file by reference elsewhere.
	e := filepath.Join(t.TempDir(), "e.ntcb")
	if code, _, errs := ntc(t, "encode", in, "-o", e, "--model", m, "--embed-model"); code != 0 || errs != "" {
		t.Fatalf("--embed-model: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "verify", e); code != 0 {
		t.Fatalf("verify --embed-model file: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", filepath.Join(t.TempDir(), "r.ntcb"), "--model", m); code != 0 || !strings.Contains(errs, "by reference") {
		t.Fatalf("encode --model elsewhere: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "encode", in, "-o", e, "--embed-model"); code != exitUsage {
		t.Fatalf("--embed-model without --model: %d %s", code, errs)
	}
}

// TestDatasetOverHTTP reads a dataset and a single file through a local
// HTTP server.
func TestDatasetOverHTTP(t *testing.T) {
	dir, in := writeSample(t)
	ds := filepath.Join(dir, "ds")
	if code, _, errs := ntc(t, "encode", in, "-o", ds, "--shard-samples", "2", "--ratio", "6"); code != 0 {
		t.Fatalf("encode: %d %s", code, errs)
	}
	srv, served := testhttp.Dir(t, dir)
	url := srv.URL + "/ds"
	if code, out, errs := ntc(t, "inspect", url); code != 0 || !strings.Contains(out, "in 4 shards") {
		t.Fatalf("inspect URL: %d %q %q", code, out, errs)
	}
	if code, out, errs := ntc(t, "verify", url+"/index.json"); code != 0 || !strings.Contains(out, "ok, 8 samples in 4 shards") {
		t.Fatalf("verify URL: %d %q %q", code, out, errs)
	}
	// Two samples of a dataset of 8 shards (int8: no model) fetch the
	// index and two shards' footer, index and chunk.
	ds8 := filepath.Join(dir, "ds8")
	if code, _, errs := ntc(t, "encode", in, "-o", ds8, "--shard-samples", "1", "--codec", "int8"); code != 0 {
		t.Fatalf("encode: %d %s", code, errs)
	}
	for _, d := range []string{"ds", "ds8"} {
		local, remote := filepath.Join(dir, "local.npy"), filepath.Join(dir, "remote.npy")
		if code, _, errs := ntc(t, "decode", filepath.Join(dir, d), "-o", local, "--force", "--samples", "5,1"); code != 0 {
			t.Fatalf("decode DIR: %d %s", code, errs)
		}
		served.Store(0)
		if code, _, errs := ntc(t, "decode", srv.URL+"/"+d, "-o", remote, "--force", "--samples", "5,1"); code != 0 {
			t.Fatalf("decode URL: %d %s", code, errs)
		}
		if !bytes.Equal(mustRead(t, local), mustRead(t, remote)) {
			t.Fatalf("%s: decoding over HTTP gives other samples", d)
		}
		var total int64
		entries, _ := os.ReadDir(filepath.Join(dir, d))
		for _, e := range entries {
			fi, _ := e.Info()
			total += fi.Size()
		}
		t.Logf("%s: 2 samples fetched %d of the dataset's %d bytes", d, served.Load(), total)
		if got := served.Load(); d == "ds8" && got >= total/2 {
			t.Errorf("%s: 2 samples fetched %d of the dataset's %d bytes", d, got, total)
		}
	}
	// One shard by its URL finds its model through the dataset beside it.
	if code, out, errs := ntc(t, "verify", url+"/shard-00003.ntcb"); code != 0 || !strings.Contains(out, "found in") {
		t.Fatalf("verify shard URL: %d %q %q", code, out, errs)
	}
	if code, _, errs := ntc(t, "inspect", srv.URL+"/nothing.ntcb"); code != exitError {
		t.Fatalf("a missing URL: %d %s", code, errs)
	}
}

// TestIndexCommand writes shards one at a time, as the steps of a
// distributed encode do, and makes them a dataset with 'ntc index'.
func TestIndexCommand(t *testing.T) {
	dir, in := writeSample(t)
	ds := filepath.Join(dir, "ds")
	os.MkdirAll(ds, 0o755)
	m := filepath.Join(ds, "model.ntcm")
	if code, _, errs := ntc(t, "fit", in, "-o", m, "--ratio", "8"); code != 0 {
		t.Fatalf("fit: %d %s", code, errs)
	}
	if code, _, errs := ntc(t, "index", ds); code != exitError || !strings.Contains(errs, "no .ntcb shards") {
		t.Fatalf("index of no shards: %d %s", code, errs)
	}
	shard := func(i int, input string) {
		t.Helper()
		if code, _, errs := ntc(t, "encode", input, "-o", filepath.Join(ds, fmt.Sprintf("shard-%05d.ntcb", i)), "--model", m,
			"--key-root", dir, "--force"); code != 0 {
			t.Fatalf("encode shard %d: %d %s", i, code, errs)
		}
	}
	shard(0, in)
	shard(1, in)
	// Both shards have the same keys: refused, naming both.
	if code, _, errs := ntc(t, "index", ds); code != exitError || !strings.Contains(errs, "shard-00000.ntcb too") {
		t.Fatalf("index of clashing keys: %d %s", code, errs)
	}
	other := filepath.Join(dir, "other")
	os.MkdirAll(other, 0o755)
	in2, err := sample.WriteTo(other)
	if err != nil {
		t.Fatal(err)
	}
	shard(1, in2)
	if code, out, errs := ntc(t, "index", ds, "--meta", "model=deit"); code != 0 || !strings.Contains(out, "index of 16 samples in 2 shards") {
		t.Fatalf("index: %d %q %q", code, out, errs)
	}
	if code, out, errs := ntc(t, "verify", ds); code != 0 || !strings.Contains(out, "ok, 16 samples in 2 shards, 1 model files") {
		t.Fatalf("verify: %d %q %q", code, out, errs)
	}
}
