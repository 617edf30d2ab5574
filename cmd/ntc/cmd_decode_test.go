package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/internal/sample"
	"github.com/ntc-project/ntc/pkg/cuda"
)

// TestDecodeCUDANotBuilt checks that --device cuda in a binary without
// CUDA support fails with exit 1 before it writes anything.
func TestDecodeCUDANotBuilt(t *testing.T) {
	if cuda.Built() {
		t.Skip("this binary has CUDA support")
	}
	dir := t.TempDir()
	in, err := sample.WriteTo(dir)
	if err != nil {
		t.Fatal(err)
	}
	x := filepath.Join(dir, "x.ntcb")
	if code, _, errs := ntc(t, "encode", in, "-o", x, "--codec", "fp16"); code != 0 {
		t.Fatalf("encode: %d %s", code, errs)
	}
	for _, args := range [][]string{
		{"decode", x, "-o", filepath.Join(dir, "y.npy"), "--device", "cuda"},
		{"decode", x, "-o", filepath.Join(dir, "y.safetensors"), "--device", "cuda", "--gpu", "1", "--dtype", "float32", "--samples", "1-3"},
	} {
		code, _, errs := ntc(t, args...)
		if code != exitError || !strings.Contains(errs, "without CUDA support") {
			t.Errorf("%v: exit %d, %q", args[3:], code, errs)
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != filepath.Base(in) && e.Name() != "x.ntcb" {
			t.Errorf("decode --device cuda left %s", e.Name())
		}
	}
}

func TestDecodeFlagErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"--device", "tpu"}, "cpu or cuda"},
		{[]string{"--device", "cuda", "--gpu", "-1"}, "--gpu"},
		{[]string{"--gpu", "1"}, "--device cuda"},
		{[]string{"--dtype", "int8"}, "dtype"},
	} {
		args := append([]string{"decode", "x.ntcb", "-o", "y.npy"}, tc.args...)
		code, _, errs := ntc(t, args...)
		if code != exitUsage || !strings.Contains(errs, tc.msg) {
			t.Errorf("%v: exit %d, %q; want %d, %q", tc.args, code, errs, exitUsage, tc.msg)
		}
	}
}

func TestDecodeParse(t *testing.T) {
	var got *decodeOptions
	g := &globals{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	parse := func(args ...string) {
		t.Helper()
		got = nil
		cmd := newDecodeCmd(g, func(_ context.Context, o *decodeOptions, _ []string) error { got = o; return nil })
		cmd.SetArgs(args)
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
	}
	parse("x.ntcb", "-o", "y.npy")
	if got.device != "cpu" || got.gpu != 0 {
		t.Errorf("defaults %+v", got)
	}
	parse("x.ntcb", "-o", "y.npy", "--device", "cuda", "--gpu", "2", "--dtype", "bf16")
	if got.device != "cuda" || got.gpu != 2 || got.dtype != "bf16" {
		t.Errorf("cuda %+v", got)
	}
}
