//go:build cuda

package cuda

import (
	_ "embed"
	"encoding/binary"
	"fmt"
	"math"
	"sync"
	"unsafe"

	"github.com/ntc-project/ntc/pkg/codec"
)

// kernelsPTX is pkg/cuda/kernels/kernels.cu compiled by scripts/gen-ptx.sh.
//
//go:embed kernels.ptx
var kernelsPTX string

// NewDecoder makes a decoder that decodes on dev.
func NewDecoder(dev *Device, opts DecoderOptions) (*Decoder, error) {
	g, err := newGPU(dev, opts)
	if err != nil {
		return nil, err
	}
	return newDecoder(g, opts, g.close), nil
}

// gpu is the backend of a Decoder on a device.
type gpu struct {
	dev   *Device
	f32   bool
	mod   *Module
	fns   map[string]*Function
	blas  *BLAS
	lanes []*gpuLane

	mu     sync.Mutex
	models map[*codec.NTCModel]*gpuModel
	plans  map[*codec.NTCPlan]*gpuPlan
}

// gpuLane is one stream with its device buffers, grown as chunks need.
type gpuLane struct {
	s       *Stream
	staged  devBuf // the chunk's staged data
	y       devBuf // the learned codec's coefficient matrix
	q       devBuf // the learned codec's symbols, decoded on the device
	scratch devBuf // output of chunks of which some samples are wanted
	err     DevPtr // int32: the highest chunk+1 whose streams failed to decode
}

type devBuf struct {
	p DevPtr
	n int64
}

// ensure grows b to at least n bytes; the contents are lost.
func (b *devBuf) ensure(d *Device, n int64) error {
	if b.n >= n {
		return nil
	}
	if b.p != 0 {
		if err := d.Free(b.p); err != nil {
			return err
		}
		b.p, b.n = 0, 0
	}
	n += n / 8
	p, err := d.Alloc(max(n, 256))
	if err != nil {
		return err
	}
	b.p, b.n = p, max(n, 256)
	return nil
}

// gpuModel and gpuPlan are the learned codec's tables in device memory.
type gpuModel struct {
	weights, blocks, groups, dct, lut DevPtr
	prefixMean                        DevPtr // 0 when the model has none
	classMul                          DevPtr // 0 before model version 7
}

type gpuPlan struct {
	start, index, shape, bucket, order, orderStart DevPtr
}

func newGPU(dev *Device, opts DecoderOptions) (*gpu, error) {
	g := &gpu{dev: dev, f32: opts.F32, fns: map[string]*Function{}, models: map[*codec.NTCModel]*gpuModel{}, plans: map[*codec.NTCPlan]*gpuPlan{}}
	var err error
	if g.mod, err = dev.LoadPTX(kernelsPTX); err != nil {
		return nil, err
	}
	for _, name := range []string{"f16_unshuffle", "fixed_dequant", "ntc_synth", "ntc_synth32", "ntc_entropy", "ntc_entropy6", "ntc_rows"} {
		if g.fns[name], err = g.mod.Function(name); err != nil {
			g.close()
			return nil, err
		}
	}
	if g.blas, err = dev.NewBLAS(); err != nil {
		g.close()
		return nil, err
	}
	lanes := opts.Lanes
	if lanes <= 0 {
		lanes = 2
	}
	for range lanes {
		s, err := dev.NewStream()
		if err != nil {
			g.close()
			return nil, err
		}
		ln := &gpuLane{s: s}
		g.lanes = append(g.lanes, ln)
		if ln.err, err = dev.Alloc(4); err == nil {
			err = dev.Memset(ln.err, 4, nil)
		}
		if err != nil {
			g.close()
			return nil, err
		}
	}
	return g, nil
}

// close frees everything the backend holds.
func (g *gpu) close() error {
	var first error
	keep := func(err error) {
		if err != nil && first == nil {
			first = err
		}
	}
	for _, l := range g.lanes {
		keep(l.s.Synchronize())
		for _, b := range []devBuf{l.staged, l.y, l.q, l.scratch, {p: l.err}} {
			if b.p != 0 {
				keep(g.dev.Free(b.p))
			}
		}
		keep(l.s.Close())
	}
	g.lanes = nil
	for _, m := range g.models {
		for _, p := range []DevPtr{m.weights, m.blocks, m.groups, m.dct, m.lut, m.prefixMean, m.classMul} {
			if p != 0 {
				keep(g.dev.Free(p))
			}
		}
	}
	for _, p := range g.plans {
		for _, q := range []DevPtr{p.start, p.index, p.shape, p.bucket, p.order, p.orderStart} {
			if q != 0 {
				keep(g.dev.Free(q))
			}
		}
	}
	g.models, g.plans = nil, nil
	if g.blas != nil {
		keep(g.blas.Close())
		g.blas = nil
	}
	if g.mod != nil {
		keep(g.mod.Close())
		g.mod = nil
	}
	return first
}

func (g *gpu) elemSize() int {
	if g.f32 {
		return 4
	}
	return 2
}

func (g *gpu) allocHost(n int) ([]byte, error)  { return g.dev.AllocHost(n) }
func (g *gpu) allocOut(n int64) (DevPtr, error) { return g.dev.Alloc(n) }
func (g *gpu) freeOut(p DevPtr) error           { return g.dev.Free(p) }
func (g *gpu) toHost(dst []byte, src DevPtr) error {
	return g.dev.CopyDtoH(dst, src, int64(len(dst)), nil)
}
func (g *gpu) freeHost(b []byte) error { return g.dev.FreeHost(b) }
func (g *gpu) wait(lane int) error     { return g.lanes[lane].s.Synchronize() }

// check reads and clears the lanes' error words.
func (g *gpu) check() error {
	var bad int32
	for _, ln := range g.lanes {
		var w [4]byte
		if err := g.dev.CopyDtoH(w[:], ln.err, 4, nil); err != nil {
			return err
		}
		if v := int32(binary.LittleEndian.Uint32(w[:])); v > 0 {
			bad = max(bad, v)
			if err := g.dev.Memset(ln.err, 4, nil); err != nil {
				return err
			}
		}
	}
	if bad > 0 {
		return fmt.Errorf("chunk %d: %w: ntc coefficient streams do not decode to their end on the GPU", bad-1, codec.ErrCorrupt)
	}
	return nil
}

func (g *gpu) scratch(lane int, n int64) (DevPtr, error) {
	l := g.lanes[lane]
	if err := l.scratch.ensure(g.dev, n); err != nil {
		return 0, err
	}
	return l.scratch.p, nil
}

func (g *gpu) copy(lane int, dst, src DevPtr, n int64) error {
	return g.dev.CopyDtoD(dst, src, n, g.lanes[lane].s)
}

// finish copies the staged chunk to the lane's device buffer and runs its
// program.
func (g *gpu) finish(lane, chunk int, l codec.Layout, st codec.Staged, host []byte, out DevPtr) error {
	ln := g.lanes[lane]
	if err := ln.staged.ensure(g.dev, int64(st.Size)); err != nil {
		return err
	}
	if err := g.dev.CopyHtoD(ln.staged.p, host[:st.Size], ln.s); err != nil {
		return err
	}
	return g.run(ln, chunk, l, st, ln.staged.p, out)
}

// run enqueues the device program of a staged chunk whose data is at
// data on the device (chunkProgram, in program.go).
func (g *gpu) run(ln *gpuLane, chunk int, l codec.Layout, st codec.Staged, data, out DevPtr) error {
	prog, err := chunkProgram(chunk, l, st, g.f32)
	if err != nil {
		return err
	}
	var m gpuModel
	var p gpuPlan
	if st.Kind == codec.DeviceNTC || st.Kind == codec.DeviceNTCStreams {
		dm, err := g.model(st.NTC.Model)
		if err != nil {
			return err
		}
		m = *dm
		if st.NTC.Plan != nil {
			dp, err := g.plan(st.NTC.Plan)
			if err != nil {
				return err
			}
			p = *dp
		}
	}
	if err := ln.y.ensure(g.dev, prog.yBytes); err != nil {
		return err
	}
	if err := ln.q.ensure(g.dev, prog.qBytes); err != nil {
		return err
	}
	bases := [numBuffers]DevPtr{
		bufStaged: data, bufOut: out, bufY: ln.y.p, bufQ: ln.q.p, bufErr: ln.err,
		bufWeights: m.weights, bufBlocks: m.blocks, bufGroups: m.groups, bufDCT: m.dct, bufLUT: m.lut, bufPrefixMean: m.prefixMean, bufClassMul: m.classMul,
		bufStart: p.start, bufIndex: p.index, bufShape: p.shape, bufBucket: p.bucket, bufOrder: p.order, bufOrderStart: p.orderStart,
	}
	addr := func(a devAddr) DevPtr {
		if a.buf >= numBuffers || bases[a.buf] == 0 {
			return 0
		}
		return bases[a.buf] + DevPtr(a.off)
	}
	for _, s := range prog.steps {
		if c := s.gemm; c != nil {
			err = g.blas.GemmF16(ln.s, c.m, c.n, c.k, addr(c.a), c.lda, c.strideA, addr(c.b), c.ldb, c.strideB,
				addr(c.c), c.ldc, c.strideC, c.batch, c.outF32)
		} else {
			args := make([]any, len(s.args))
			for i, a := range s.args {
				if da, ok := a.(devAddr); ok {
					args[i] = addr(da)
				} else {
					args[i] = a
				}
			}
			err = g.fns[s.kernel].Launch(s.grid, s.block, 0, ln.s, args...)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// upload copies a slice of fixed-size values to new device memory.
func upload[T any](d *Device, v []T) (DevPtr, error) {
	if len(v) == 0 {
		return 0, nil
	}
	n := len(v) * int(unsafe.Sizeof(v[0]))
	b := unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), n)
	p, err := d.Alloc(int64(n))
	if err != nil {
		return 0, err
	}
	if err := d.CopyHtoD(p, b, nil); err != nil {
		d.Free(p)
		return 0, err
	}
	return p, nil
}

// model returns the device copy of a learned codec's tables, uploading
// them on first use.
func (g *gpu) model(m *codec.NTCModel) (*gpuModel, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if dm, ok := g.models[m]; ok {
		return dm, nil
	}
	dm := &gpuModel{}
	dct := make([]uint32, len(m.DCT))
	for i, v := range m.DCT {
		dct[i] = math.Float32bits(v)
	}
	// Upload the tables in turn; on a failure free what was uploaded.
	ups := []struct {
		dst *DevPtr
		up  func() (DevPtr, error)
	}{
		{&dm.weights, func() (DevPtr, error) { return upload(g.dev, m.Weights) }},
		{&dm.blocks, func() (DevPtr, error) { return upload(g.dev, m.Blocks) }},
		{&dm.groups, func() (DevPtr, error) { return upload(g.dev, m.Groups) }},
		{&dm.dct, func() (DevPtr, error) { return upload(g.dev, dct) }},
		{&dm.lut, func() (DevPtr, error) { return upload(g.dev, m.LUT) }},
		{&dm.prefixMean, func() (DevPtr, error) { return upload(g.dev, m.PrefixMean) }},
		{&dm.classMul, func() (DevPtr, error) { return upload(g.dev, m.ClassMul) }},
	}
	for i, u := range ups {
		p, err := u.up()
		if err != nil {
			for _, done := range ups[:i] {
				if *done.dst != 0 {
					g.dev.Free(*done.dst)
				}
			}
			return nil, err
		}
		*u.dst = p
	}
	g.models[m] = dm
	return dm, nil
}

// plan returns the device copy of a step code's tables.
func (g *gpu) plan(p *codec.NTCPlan) (*gpuPlan, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if dp, ok := g.plans[p]; ok {
		return dp, nil
	}
	dp := &gpuPlan{}
	var err error
	if dp.start, err = upload(g.dev, p.Start); err == nil {
		if dp.index, err = upload(g.dev, p.Index); err == nil {
			if dp.shape, err = upload(g.dev, p.Shape); err == nil {
				if dp.bucket, err = upload(g.dev, p.Bucket); err == nil {
					if dp.order, err = upload(g.dev, p.Order); err == nil {
						dp.orderStart, err = upload(g.dev, p.OrderStart)
					}
				}
			}
		}
	}
	if err != nil {
		return nil, err
	}
	g.plans[p] = dp
	return dp, nil
}

// littleEndian guards the uploads, which copy Go values' bytes as they
// are in memory: the kernels read little-endian data.
var _ = func() bool {
	var x uint16 = 1
	if (*[2]byte)(unsafe.Pointer(&x))[0] != 1 {
		panic("cuda: big-endian hosts are not supported")
	}
	return binary.LittleEndian.Uint16([]byte{1, 0}) == 1
}()
