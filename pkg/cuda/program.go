//go:build cuda || kernelemu

package cuda

import (
	"fmt"

	"github.com/ntc-project/ntc/pkg/codec"
)

// This file holds the device program of a staged chunk as data: which
// kernels of kernels.cu to launch, on which grid, with which arguments,
// and the GEMM. The GPU backend (decode_gpu.go) runs it; the kernel
// emulator's test (emu_test.go, build tag kernelemu) hands the same
// program to kernels/emu, which runs the kernels' source on the CPU. It is
// plain Go, in both builds (and not in the default one, which has no use
// for it).

// Launch shapes the kernels expect.
const (
	threads     = 256
	synthKT     = 32  // columns per ntc_synth block (ntcKT in kernels.cu)
	synthThread = 256 // ntc_synth's block size (ntcThreads in kernels.cu)
	maxBlocks   = 65535 * 16
)

// maxGridY is the most blocks a grid has in y (CUDA's limit): ntc_synth
// runs its blocks over more samples than that. A variable, so that the
// tests can make the blocks loop over samples with small chunks.
var maxGridY = 65535

// devBuffer names a device buffer that a chunk's program reads or writes.
type devBuffer uint8

const (
	bufNone   devBuffer = iota // a null pointer: a table the chunk has not
	bufStaged                  // the staged chunk (Staged.Size bytes)
	bufOut                     // the chunk's output: N samples of float16 or float32
	bufY                       // the lane's coefficient matrix (program.yBytes)
	bufQ                       // the lane's int32 symbols (program.qBytes)
	bufErr                     // the lane's error word (int32)
	// The learned codec's tables (codec.NTCModel), as uploaded.
	bufWeights
	bufBlocks
	bufGroups
	bufDCT
	bufLUT
	bufPrefixMean
	bufClassMul
	// A step code's tables (codec.NTCPlan), as uploaded.
	bufStart
	bufIndex
	bufShape
	bufBucket
	bufOrder
	bufOrderStart
	numBuffers
)

var bufferNames = [numBuffers]string{"null", "staged", "out", "y", "q", "err", "weights", "blocks", "groups",
	"dct", "lut", "prefixMean", "classMul", "start", "index", "shape", "bucket", "order", "orderStart"}

func (b devBuffer) String() string {
	if b < numBuffers {
		return bufferNames[b]
	}
	return fmt.Sprintf("buffer%d", int(b))
}

// devAddr is an address off bytes into a buffer.
type devAddr struct {
	buf devBuffer
	off int64
}

// gemmCall is a BLAS.GemmF16 call; see its documentation.
type gemmCall struct {
	m, n, k int
	a       devAddr
	lda     int
	strideA int64
	b       devAddr
	ldb     int
	strideB int64
	c       devAddr
	ldc     int
	strideC int64
	batch   int
	outF32  bool
}

// progStep is a kernel launch or, when gemm is set, a GEMM.
type progStep struct {
	kernel      string
	grid, block Dim3
	args        []any // devAddr or int64, one 8-byte slot each
	gemm        *gemmCall
}

// program is the device program of a staged chunk.
type program struct {
	steps []progStep
	// yBytes and qBytes are the sizes of the lane's buffers y and q that
	// it needs.
	yBytes, qBytes int64
}

func (p *program) launch(kernel string, grid, block Dim3, args ...any) {
	p.steps = append(p.steps, progStep{kernel: kernel, grid: grid, block: block, args: args})
}

// gridFor returns a grid-stride launch width for n items.
func gridFor(n int64) int { return int(max(1, min((n+threads-1)/threads, maxBlocks))) }

// chunkProgram returns the device program that finishes chunk (staged as
// st, of layout l) into its output, float32 when f32 is set.
func chunkProgram(chunk int, l codec.Layout, st codec.Staged, f32 bool) (program, error) {
	var p program
	f32w := int64(0)
	if f32 {
		f32w = 1
	}
	staged, out := devAddr{buf: bufStaged}, devAddr{buf: bufOut}
	nv := int64(st.N) * int64(l.Values())
	switch st.Kind {
	case codec.DeviceF16:
		p.launch("f16_unshuffle", Dim3{X: gridFor(nv)}, Dim3{X: threads}, staged, out, nv, f32w)
		return p, nil
	case codec.DeviceFixed:
		fd := st.Fixed
		p.launch("fixed_dequant", Dim3{X: gridFor(nv)}, Dim3{X: threads},
			staged, out, int64(st.N)*int64(l.Tokens), int64(l.Dim), int64(fd.Group), int64(fd.TokenBytes), int64(fd.Format), f32w)
		return p, nil
	case codec.DeviceNTC, codec.DeviceNTCStreams:
		return ntcProgram(p, chunk, l, st, f32w)
	}
	return p, fmt.Errorf("cuda: unknown device program %d", st.Kind)
}

func ntcProgram(p program, chunk int, l codec.Layout, st codec.Staged, f32 int64) (program, error) {
	ns := st.NTC
	if ns.Model == nil {
		return p, fmt.Errorf("cuda: chunk %d: learned codec chunk without its model", chunk)
	}
	staged, out := devAddr{buf: bufStaged}, devAddr{buf: bufOut}
	y, q := devAddr{buf: bufY}, devAddr{buf: bufQ}
	tbl := func(b devBuffer) devAddr { return devAddr{buf: b} }
	G := l.GridH * l.GridW
	K, KP, D := ns.Model.K, ns.Model.KPad, l.Dim
	if G > 0 {
		entries := 0
		start, index, shape, bucket, order, orderStart := tbl(bufNone), tbl(bufNone), tbl(bufNone), tbl(bufNone), tbl(bufNone), tbl(bufNone)
		if ns.Plan != nil {
			entries = ns.Plan.Entries
			start, index, shape, bucket, order, orderStart = tbl(bufStart), tbl(bufIndex), tbl(bufShape), tbl(bufBucket), tbl(bufOrder), tbl(bufOrderStart)
		}
		// The class step multipliers (model version 7), or a null pointer.
		cmul := tbl(bufNone)
		if len(ns.Model.ClassMul) > 0 {
			if want := len(ns.Model.Blocks) / 20 * 16 * K; len(ns.Model.ClassMul) != want {
				return p, fmt.Errorf("cuda: chunk %d: %d class multipliers, want %d", chunk, len(ns.Model.ClassMul), want)
			}
			cmul = tbl(bufClassMul)
		}
		p.yBytes = int64(st.N) * int64(G) * int64(KP) * 2
		grid := Dim3{X: len(ns.Model.Groups) / 18, Y: min(st.N, maxGridY), Z: (KP + synthKT - 1) / synthKT}
		if st.Kind == codec.DeviceNTCStreams {
			p.qBytes = int64(st.N) * int64(entries) * 4
			entropy := "ntc_entropy"
			if ns.Model.Version >= 5 { // model versions 5 to 8: payload version 6
				entropy = "ntc_entropy6"
			}
			p.launch(entropy, Dim3{X: (ns.Slices + 127) / 128}, Dim3{X: 128},
				staged, q, tbl(bufLUT), start, shape, order, orderStart, bucket, tbl(bufErr),
				int64(K), int64(entries), int64(len(ns.Model.Blocks)/20), int64(st.N), int64(chunk))
			p.launch("ntc_synth32", grid, Dim3{X: synthThread},
				staged, q, tbl(bufBlocks), tbl(bufGroups), tbl(bufDCT), start, index, shape, bucket, cmul, y,
				int64(K), int64(KP), int64(entries), int64(G), int64(st.N))
		} else {
			p.launch("ntc_synth", grid, Dim3{X: synthThread},
				staged, tbl(bufBlocks), tbl(bufGroups), tbl(bufDCT), start, index, shape, bucket, cmul, y,
				int64(K), int64(KP), int64(entries), int64(G), int64(st.N), int64(ns.QOff), int64(ns.ExcOff))
		}
		elem := int64(2)
		if f32 != 0 {
			elem = 4
		}
		var gc gemmCall
		if l.Prefix == 0 {
			gc = gemmCall{m: st.N * G, n: D, k: KP, a: y, lda: KP, b: tbl(bufWeights), ldb: D, c: out, ldc: D, batch: 1}
		} else {
			gc = gemmCall{m: G, n: D, k: KP, a: y, lda: KP, strideA: int64(G) * int64(KP), b: tbl(bufWeights), ldb: D,
				c: devAddr{buf: bufOut, off: int64(l.Prefix) * int64(D) * elem}, ldc: D, strideC: int64(l.Tokens) * int64(D), batch: st.N}
		}
		gc.outF32 = f32 != 0
		p.steps = append(p.steps, progStep{gemm: &gc})
	}
	if ns.Rows > 0 {
		// The prefix tokens' means (model version 6), or a null pointer.
		mean := tbl(bufNone)
		if len(ns.Model.PrefixMean) > 0 {
			if len(ns.Model.PrefixMean) != l.Prefix*D {
				return p, fmt.Errorf("cuda: chunk %d: %d prefix mean values, want %d", chunk, len(ns.Model.PrefixMean), l.Prefix*D)
			}
			mean = tbl(bufPrefixMean)
		}
		p.launch("ntc_rows", Dim3{X: min(ns.Rows, maxBlocks)}, Dim3{X: 128},
			staged, out, mean, int64(ns.RowOff), int64(ns.Rows), int64(D), int64(l.Tokens), int64(l.Prefix), f32)
	}
	return p, nil
}
