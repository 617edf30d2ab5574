//go:build cuda

package main

// The CUDA build of the library (scripts/build-python.sh --cuda, tag cuda):
// the same C ABI plus ntcb_cuda_read, which decodes samples straight into
// device memory with pkg/cuda (payloads copied to the GPU, entropy decoding
// and the inverse transform there). The library then cannot be loaded on a
// machine without a working CUDA driver (gorgonia.org/cu exits the process
// in its init when cuInit fails), which is why it is a separate file that
// python/ntcb loads only in a process where torch has initialised CUDA.

/*
#include <stdint.h>
*/
import "C"

import (
	"context"
	"fmt"
	"sync"
	"unsafe"

	"github.com/ntc-project/ntc/pkg/cuda"
)

// gpus holds one device and its two decoders (float16 and float32 output)
// per GPU ordinal, opened on first use and kept for the process.
var gpus struct {
	mu   sync.Mutex
	devs map[int]*gpuDecoders
}

type gpuDecoders struct {
	dev      *cuda.Device
	f16, f32 *cuda.Decoder
}

func gpuFor(ordinal int) (*gpuDecoders, error) {
	gpus.mu.Lock()
	defer gpus.mu.Unlock()
	if g := gpus.devs[ordinal]; g != nil {
		return g, nil
	}
	dev, err := cuda.Open(ordinal)
	if err != nil {
		return nil, err
	}
	g := &gpuDecoders{dev: dev}
	if g.f16, err = cuda.NewDecoder(dev, cuda.DecoderOptions{}); err == nil {
		g.f32, err = cuda.NewDecoder(dev, cuda.DecoderOptions{F32: true})
	}
	if err != nil {
		if g.f16 != nil {
			g.f16.Close()
		}
		dev.Close()
		return nil, err
	}
	if gpus.devs == nil {
		gpus.devs = map[int]*gpuDecoders{}
	}
	gpus.devs[ordinal] = g
	return g, nil
}

// ntcb_cuda_read decodes the n samples idx[0:n] into device memory at dst
// (dst_bytes, [n, tokens, dim] of dtype) on GPU ordinal, in the device's
// primary context (the one PyTorch uses). Only the compressed payloads
// cross PCIe; the entropy decoding, the inverse transform and the
// dequantisation run on the GPU. The call returns when the output is
// complete; the caller orders its own streams around it (work queued
// before on any stream that writes dst must be complete).
//
//export ntcb_cuda_read
func ntcb_cuda_read(h C.int64_t, ordinal C.int32_t, idx *C.int64_t, n C.int64_t, dtype C.int32_t, dst C.uint64_t, dstBytes C.int64_t, errbuf *C.char, errcap C.int64_t) C.int32_t {
	return callOn(h, errbuf, errcap, func(hd *handle) error {
		g, err := gpuFor(int(ordinal))
		if err != nil {
			return err
		}
		dec := g.f16
		switch int(dtype) {
		case dtypeFloat32:
			dec = g.f32
		case dtypeFloat16:
		default:
			return fmt.Errorf("dtype %d: %w", int(dtype), errArgument)
		}
		samples := make([]int, int(n))
		if n > 0 {
			for k, i := range unsafe.Slice((*int64)(unsafe.Pointer(idx)), int(n)) {
				if i < 0 || i >= int64(hd.r.Len()) {
					return fmt.Errorf("sample %d out of range [0, %d): %w", i, hd.r.Len(), errArgument)
				}
				samples[k] = int(i)
			}
		}
		if want := dec.OutputBytes(hd.r.Layout(), len(samples)); int64(dstBytes) != want {
			return fmt.Errorf("device buffer of %d bytes for %d samples, want %d: %w", int64(dstBytes), len(samples), want, errArgument)
		}
		if len(samples) == 0 {
			return nil
		}
		return dec.DecodeSamples(context.Background(), hd.r, samples, cuda.DevPtr(uintptr(dst)))
	})
}
