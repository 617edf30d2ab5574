package dataset

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/ntcb"
)

// writeShards encodes n shards of 3 samples each, one file at a time (as
// the steps of a distributed encode do), with one model by reference.
func writeShards(t *testing.T, dir string, n int) *ntcb.Model {
	t.Helper()
	all := memory(9, 3*n, "s")
	m, err := ntcb.Fit(context.Background(), all, ntcb.Options{Codec: "ntc", Prefix: -1, SharedModel: true, ModelRef: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := ntcb.WriteModelFile(filepath.Join(dir, ModelName), m, "test"); err != nil {
		t.Fatal(err)
	}
	for s := range n {
		src := &ntcb.Memory{Data: all.Data[s*3*17*8 : (s+1)*3*17*8], N: 3, Tokens: 17, Dim: 8, KeyPrefix: ShardName(s)}
		if _, err := ntcb.EncodeFile(context.Background(), filepath.Join(dir, ShardName(s)), src, ntcb.Options{Model: m, ModelRef: true, ModelFile: ModelName, Prefix: -1}); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	writeShards(t, dir, 4)
	res, err := Build(context.Background(), dir, BuildOptions{Tool: "test", Meta: map[string]string{"k": "v"}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Verified != 4 || res.Sizes.Samples != 12 || res.Sizes.ModelBytes == 0 {
		t.Fatalf("result %+v", res)
	}
	r, err := Open(context.Background(), dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Verify(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if r.Key(4) != "shard-00001.ntcb#1" || len(r.Index().Models) != 1 || r.Index().Meta["k"] != "v" {
		t.Fatalf("index %+v, key %q", r.Index(), r.Key(4))
	}
}

func TestBuildRefuses(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, dir string)
		want   string
	}{
		{"no shards", func(t *testing.T, dir string) {
			for s := range 3 {
				os.Remove(filepath.Join(dir, ShardName(s)))
			}
		}, "no .ntcb shards"},
		{"model missing", func(t *testing.T, dir string) { os.Remove(filepath.Join(dir, ModelName)) }, "model not found"},
		{"damaged shard", func(t *testing.T, dir string) {
			p := filepath.Join(dir, ShardName(1))
			b, _ := os.ReadFile(p)
			b[len(b)/3] ^= 4
			os.WriteFile(p, b, 0o644)
		}, ShardName(1)},
		{"same keys twice", func(t *testing.T, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, ShardName(0)))
			os.WriteFile(filepath.Join(dir, "shard-00009.ntcb"), b, 0o644)
		}, "is in shard-00000.ntcb too"},
		{"another layout", func(t *testing.T, dir string) {
			src := &ntcb.Memory{Data: tokens(3, 1, 10, 8), N: 1, Tokens: 10, Dim: 8, KeyPrefix: "other"}
			if _, err := ntcb.EncodeFile(context.Background(), filepath.Join(dir, "x.ntcb"), src, ntcb.Options{Codec: "int8", Prefix: -1}); err != nil {
				t.Fatal(err)
			}
		}, "layout"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			writeShards(t, dir, 3)
			tc.damage(t, dir)
			_, err := Build(context.Background(), dir, BuildOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one naming %q", err, tc.want)
			}
			if _, err := os.Stat(filepath.Join(dir, IndexName)); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("an index was written: %v", err)
			}
		})
	}
}
