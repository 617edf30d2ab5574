package dataset

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// realTokens reads the 48 embedded real DeiT-Tiny samples.
func realTokens(t *testing.T) *ntcb.Memory {
	t.Helper()
	path, err := sample.Bench.Save(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, shape, _, err := tensorio.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	return &ntcb.Memory{Data: v, N: shape[0], Tokens: shape[1], Dim: shape[2], KeyPrefix: "real"}
}

func sub(m *ntcb.Memory, from, n int) *ntcb.Memory {
	v := m.Tokens * m.Dim
	return &ntcb.Memory{Data: m.Data[from*v : (from+n)*v], N: n, Tokens: m.Tokens, Dim: m.Dim, KeyPrefix: m.KeyPrefix}
}

// TestShardRatios checks the two ratio goals of datasets on real tokens: a
// 4-sample shard encoded with a model fitted on its tokens at ratio 8 is at
// least 7.84x with the model not in it, and a dataset of 4-sample shards
// encoded at ratio 8 (the model once, the index, every shard's framing
// counted) is within 2% of one file of the same samples encoded at ratio 8.
func TestShardRatios(t *testing.T) {
	if testing.Short() {
		t.Skip("fits the learned codec on 48 real samples")
	}
	all := realTokens(t)
	dir := t.TempDir()
	rate := codec.Options{Ratio: 8}
	shard := sub(all, 0, 4)
	m, err := ntcb.Fit(context.Background(), shard, ntcb.Options{Codec: "ntc", Prefix: -1, CodecOptions: rate, SharedModel: true, ModelRef: true})
	if err != nil {
		t.Fatal(err)
	}
	res, err := ntcb.EncodeFile(context.Background(), filepath.Join(dir, "s.ntcb"), shard, ntcb.Options{Model: m, ModelRef: true, Prefix: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("a 4-sample shard by reference: %.3fx, SNR %.2f dB", res.Ratio, res.Quality.SNR)
	if res.Ratio < 0.98*8 {
		t.Errorf("a 4-sample shard by reference: %.3fx, want at least 7.84x", res.Ratio)
	}
	one, err := ntcb.EncodeFile(context.Background(), filepath.Join(dir, "one.ntcb"), all, ntcb.Options{Codec: "ntc", Prefix: -1, CodecOptions: rate})
	if err != nil {
		t.Fatal(err)
	}
	ds, err := Encode(context.Background(), filepath.Join(dir, "ds"), all, EncodeOptions{
		Options: ntcb.Options{Codec: "ntc", Prefix: -1, CodecOptions: rate}, ShardSamples: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("one file: %.3fx, SNR %.2f dB; %d shards of 4: %.3fx over every file, %.3fx over the shards, SNR %.2f dB",
		one.Ratio, one.Quality.SNR, ds.Sizes.Shards, ds.Sizes.Ratio, ds.Sizes.ShardRatio, ds.Quality.SNR)
	if d := ds.Sizes.Ratio/one.Ratio - 1; d < -0.02 || d > 0.02 {
		t.Errorf("dataset %.3fx, one file %.3fx: %+.1f%%, want within 2%%", ds.Sizes.Ratio, one.Ratio, 100*d)
	}
}
