//go:build cuda

// These tests need a GPU: gorgonia.org/cu's init exits the test binary on a
// machine without one, so they are built here (scripts/build-cuda.sh makes
// bin/cuda.test) and run on the GPU machine:
//
//	LD_LIBRARY_PATH=/usr/local/cuda/targets/x86_64-linux/lib bin/cuda.test -test.v

package cuda

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
)

// openDevice opens device 0 for one test, or skips it when there is none.
func openDevice(tb testing.TB) *Device {
	tb.Helper()
	d, err := Open(0)
	if err != nil {
		tb.Skipf("no CUDA device: %v", err)
	}
	tb.Cleanup(func() {
		if err := d.Close(); err != nil {
			tb.Errorf("Close: %v", err)
		}
	})
	return d
}

func ok(tb testing.TB, err error) {
	tb.Helper()
	if err != nil {
		tb.Fatal(err)
	}
}

func TestDeviceInfo(t *testing.T) {
	d := openDevice(t)
	major, minor := d.ComputeCapability()
	t.Logf("%s, compute capability %d.%d, %d MiB", d.Name(), major, minor, d.TotalMemory()>>20)
	if !Built() || d.Name() == "" || major < 7 || d.TotalMemory() <= 0 {
		t.Fatalf("Built %v, name %q, compute capability %d.%d, memory %d", Built(), d.Name(), major, minor, d.TotalMemory())
	}
	if _, err := Open(1 << 20); !errors.Is(err, ErrDevice) {
		t.Errorf("Open(1<<20) = %v; want ErrDevice", err)
	}
}

func TestMemory(t *testing.T) {
	d := openDevice(t)
	const n = 1<<20 + 12345
	const zeroFrom, zeroTo = 100, 1100

	src, err := d.AllocHost(n)
	ok(t, err)
	defer func() { ok(t, d.FreeHost(src)) }()
	for i := range src {
		src[i] = byte(i*7 + i>>8)
	}
	a, err := d.Alloc(n)
	ok(t, err)
	defer func() { ok(t, d.Free(a)) }()
	b, err := d.Alloc(n)
	ok(t, err)
	defer func() { ok(t, d.Free(b)) }()
	s, err := d.NewStream()
	ok(t, err)
	defer func() { ok(t, s.Close()) }()

	// Pinned and async: H2D, D2D, memset, D2H on one stream.
	dst, err := d.AllocHost(n)
	ok(t, err)
	defer func() { ok(t, d.FreeHost(dst)) }()
	ok(t, d.CopyHtoD(a, src, s))
	ok(t, d.CopyDtoD(b, a, n, s))
	ok(t, d.Memset(b+zeroFrom, zeroTo-zeroFrom, s))
	ok(t, d.CopyDtoH(dst, b, n, s))
	ok(t, s.Synchronize())
	want := bytes.Clone(src)
	clear(want[zeroFrom:zeroTo])
	if !bytes.Equal(dst, want) {
		t.Fatalf("pinned round trip differs at byte %d", firstDiff(dst, want))
	}

	// Pageable and synchronous.
	got := make([]byte, n)
	ok(t, d.CopyDtoH(got, a, n, nil))
	if !bytes.Equal(got, src) {
		t.Fatalf("pageable D2H differs at byte %d", firstDiff(got, src))
	}
	// Pageable on a stream, at an odd offset, then Device.Synchronize.
	page := bytes.Clone(want)
	ok(t, d.CopyHtoD(a, page, s))
	ok(t, d.CopyDtoH(got[:n-1], a+1, n-1, s))
	ok(t, d.Synchronize())
	if !bytes.Equal(got[:n-1], want[1:]) {
		t.Fatalf("pageable async H2D differs at byte %d", firstDiff(got[:n-1], want[1:]))
	}

	if err := d.FreeHost(make([]byte, 8)); err == nil {
		t.Error("FreeHost of Go memory succeeded")
	}
	if err := d.CopyDtoH(got, a, n+1, nil); err == nil || errors.Is(err, ErrDevice) {
		t.Errorf("CopyDtoH past the slice: %v; want an argument error", err)
	}
	if _, err := d.Alloc(1 << 62); !errors.Is(err, ErrDevice) {
		t.Errorf("Alloc(1<<62) = %v; want ErrDevice", err)
	} else {
		t.Logf("Alloc(1<<62): %v", err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// saxpbPTX is y[i] = a*x[i] + b for i < n, hand-written for sm_70.
const saxpbPTX = `
.version 7.0
.target sm_70
.address_size 64

.visible .entry saxpb(
	.param .u64 p_y,
	.param .u64 p_x,
	.param .f32 p_a,
	.param .f32 p_b,
	.param .u32 p_n
)
{
	.reg .pred  %p<2>;
	.reg .b32   %r<6>;
	.reg .f32   %f<5>;
	.reg .b64   %rd<8>;

	ld.param.u64    %rd1, [p_y];
	ld.param.u64    %rd2, [p_x];
	ld.param.f32    %f1, [p_a];
	ld.param.f32    %f2, [p_b];
	ld.param.u32    %r1, [p_n];
	mov.u32         %r2, %ctaid.x;
	mov.u32         %r3, %ntid.x;
	mov.u32         %r4, %tid.x;
	mad.lo.s32      %r5, %r2, %r3, %r4;
	setp.ge.u32     %p1, %r5, %r1;
	@%p1 bra        DONE;
	cvta.to.global.u64 %rd3, %rd2;
	cvta.to.global.u64 %rd4, %rd1;
	mul.wide.u32    %rd5, %r5, 4;
	add.s64         %rd6, %rd3, %rd5;
	ld.global.f32   %f3, [%rd6];
	fma.rn.f32      %f4, %f3, %f1, %f2;
	add.s64         %rd7, %rd4, %rd5;
	st.global.f32   [%rd7], %f4;
DONE:
	ret;
}
`

func f32Bytes(v []float32) []byte {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(f))
	}
	return b
}

func bytesF32(b []byte) []float32 {
	v := make([]float32, len(b)/4)
	for i := range v {
		v[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
	}
	return v
}

func TestLaunch(t *testing.T) {
	d := openDevice(t)
	mod, err := d.LoadPTX(saxpbPTX)
	ok(t, err)
	defer func() { ok(t, mod.Close()) }()
	fn, err := mod.Function("saxpb")
	ok(t, err)

	const n = 100003 // not a multiple of the block
	x := make([]float32, n)
	for i := range x {
		x[i] = float32(i%1000) - 500.25
	}
	xd, err := d.Alloc(4 * n)
	ok(t, err)
	defer func() { ok(t, d.Free(xd)) }()
	yd, err := d.Alloc(4 * (n + 1))
	ok(t, err)
	defer func() { ok(t, d.Free(yd)) }()
	ok(t, d.CopyHtoD(xd, f32Bytes(x), nil))
	s, err := d.NewStream()
	ok(t, err)
	defer func() { ok(t, s.Close()) }()
	start, err := d.NewEvent()
	ok(t, err)
	defer func() { ok(t, start.Close()) }()
	end, err := d.NewEvent()
	ok(t, err)
	defer func() { ok(t, end.Close()) }()

	grid, block := Dim3{X: (n + 255) / 256}, Dim3{X: 256}
	// The count as uint32 and as int: each fills the .u32 parameter.
	for _, c := range []struct {
		a, b  float32
		count any
	}{{2.5, -1, uint32(n)}, {-0.5, 3, int(n)}} {
		ok(t, d.Memset(yd, 4*(n+1), s))
		ok(t, start.Record(s))
		ok(t, fn.Launch(grid, block, 0, s, yd, xd, c.a, c.b, c.count))
		ok(t, end.Record(s))
		ok(t, end.Synchronize())
		el, err := Elapsed(start, end)
		ok(t, err)
		out := make([]byte, 4*(n+1))
		ok(t, d.CopyDtoH(out, yd, int64(len(out)), s))
		ok(t, s.Synchronize())
		y := bytesF32(out)
		for i := range n {
			if want := float32(math.FMA(float64(x[i]), float64(c.a), float64(c.b))); y[i] != want {
				t.Fatalf("a=%g b=%g count %T: y[%d] = %g, want %g", c.a, c.b, c.count, i, y[i], want)
			}
		}
		if y[n] != 0 {
			t.Fatalf("the kernel wrote past n: %g", y[n])
		}
		if el <= 0 || el > time.Second {
			t.Errorf("Elapsed = %v", el)
		}
		t.Logf("saxpb over %d floats: %v", n, el)
	}

	if err := fn.Launch(grid, block, 0, s, yd, xd, 1.0, float32(0), uint32(n)); err == nil || errors.Is(err, ErrDevice) {
		t.Errorf("launch with a float64 argument: %v; want an argument error", err)
	}
	if err := fn.Launch(Dim3{}, block, 0, s, yd, xd, float32(1), float32(0), uint32(n)); err == nil {
		t.Error("launch on an empty grid succeeded")
	}
	if _, err := mod.Function("nope"); !errors.Is(err, ErrDevice) {
		t.Errorf("Function(nope) = %v; want ErrDevice", err)
	}
	bad := strings.Replace(saxpbPTX, "fma.rn.f32      %f4, %f3, %f1, %f2;", "fma.rn.f32 %f4, %f3, %nope;", 1)
	_, err = d.LoadPTX(bad)
	if !errors.Is(err, ErrDevice) || !strings.Contains(err.Error(), "cuModuleLoadDataEx") {
		t.Errorf("LoadPTX(bad) = %v; want ErrDevice from cuModuleLoadDataEx", err)
	}
	t.Logf("LoadPTX(bad): %v", err)
}

// TestDo checks Do from many goroutines at once, methods called inside Do,
// and that a second Device on the same GPU can be closed while the first
// goes on.
func TestDo(t *testing.T) {
	d := openDevice(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			buf := make([]byte, 4096)
			for i := range 50 {
				p, err := d.Alloc(int64(len(buf)))
				if err != nil {
					errs <- err
					return
				}
				buf[0], buf[4095] = byte(g), byte(i)
				err = errors.Join(d.CopyHtoD(p, buf, nil), d.CopyDtoH(buf, p, 4096, nil), d.Free(p))
				if err == nil && (buf[0] != byte(g) || buf[4095] != byte(i)) {
					err = fmt.Errorf("goroutine %d round %d: got %d %d", g, i, buf[0], buf[4095])
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	err := d.Do(func() error { // nested calls run directly
		p, err := d.Alloc(256)
		if err != nil {
			return err
		}
		return errors.Join(d.Memset(p, 256, nil), d.Synchronize(), d.Free(p))
	})
	ok(t, err)
	if err := d.Do(func() error { return d.Close() }); err == nil {
		t.Error("Close inside Do succeeded")
	}

	d2, err := Open(0)
	ok(t, err)
	p, err := d2.Alloc(64)
	ok(t, err)
	ok(t, d2.Free(p))
	ok(t, d2.Close())
	ok(t, d2.Close())
	if _, err := d2.Alloc(64); err == nil {
		t.Error("Alloc after Close succeeded")
	}
	if err := d2.Synchronize(); err == nil {
		t.Error("Synchronize after Close succeeded")
	}
	p, err = d.Alloc(64) // d holds the same primary context
	ok(t, err)
	ok(t, d.Free(p))
}

// gemmRef is the CPU's row-major C = A B of one batch item, in float64.
func gemmRef(a, b []uint16, m, n, k, lda, ldb int) []float64 {
	c := make([]float64, m*n)
	for i := range m {
		for j := range n {
			var sum float64
			for l := range k {
				sum += float64(f16.ToFloat32(a[i*lda+l])) * float64(f16.ToFloat32(b[l*ldb+j]))
			}
			c[i*n+j] = sum
		}
	}
	return c
}

func u16Bytes(v []uint16) []byte {
	b := make([]byte, 2*len(v))
	for i, h := range v {
		binary.LittleEndian.PutUint16(b[2*i:], h)
	}
	return b
}

func TestGemmF16(t *testing.T) {
	d := openDevice(t)
	bl, err := d.NewBLAS()
	ok(t, err)
	defer func() { ok(t, bl.Close()) }()
	s, err := d.NewStream()
	ok(t, err)
	defer func() { ok(t, s.Close()) }()

	const m, n, k = 37, 24, 16
	const lda, ldb, ldc = k + 3, n + 2, n + 5
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		batch   int
		sharedB bool
		outF32  bool
		pad     int64 // added to the strides; odd values misalign the items
	}{
		{3, false, true, 0}, {3, false, false, 0}, {3, true, true, 7}, {3, true, false, 1},
		{1, false, true, 0}, {1, false, false, 0},
	} {
		name := fmt.Sprintf("batch%d/sharedB=%v/outF32=%v/pad%d", tc.batch, tc.sharedB, tc.outF32, tc.pad)
		t.Run(name, func(t *testing.T) {
			strideA, strideB, strideC := int64(m*lda)+tc.pad, int64(k*ldb)+tc.pad, int64(m*ldc)+tc.pad
			nb := tc.batch
			if tc.sharedB {
				strideB, nb = 0, 1
			}
			a := make([]uint16, strideA*int64(tc.batch))
			b := make([]uint16, strideB*int64(nb)+int64(k*ldb))
			for i := range a {
				a[i] = f16.FromFloat32(rng.Float32()*2 - 1)
			}
			for i := range b {
				b[i] = f16.FromFloat32(rng.Float32()*2 - 1)
			}
			esize := int64(2)
			if tc.outF32 {
				esize = 4
			}
			cBytes := strideC * int64(tc.batch) * esize
			ad, err := d.Alloc(2 * int64(len(a)))
			ok(t, err)
			defer func() { ok(t, d.Free(ad)) }()
			bd, err := d.Alloc(2 * int64(len(b)))
			ok(t, err)
			defer func() { ok(t, d.Free(bd)) }()
			cd, err := d.Alloc(cBytes)
			ok(t, err)
			defer func() { ok(t, d.Free(cd)) }()
			ok(t, d.CopyHtoD(ad, u16Bytes(a), s))
			ok(t, d.CopyHtoD(bd, u16Bytes(b), s))
			// 0xff bytes are NaN in both widths: what GemmF16 must not touch stays so.
			ok(t, d.CopyHtoD(cd, bytes.Repeat([]byte{0xff}, int(cBytes)), s))
			ok(t, bl.GemmF16(s, m, n, k, ad, lda, strideA, bd, ldb, strideB, cd, ldc, strideC, tc.batch, tc.outF32))
			out := make([]byte, cBytes)
			ok(t, d.CopyDtoH(out, cd, cBytes, s))
			ok(t, s.Synchronize())

			for it := range tc.batch {
				ref := gemmRef(a[int64(it)*strideA:], b[int64(it)*strideB:], m, n, k, lda, ldb)
				for e := int64(0); e < strideC; e++ {
					off := (int64(it)*strideC + e) * esize
					var got float32
					var raw uint64
					if tc.outF32 {
						raw = uint64(binary.LittleEndian.Uint32(out[off:]))
						got = math.Float32frombits(uint32(raw))
					} else {
						raw = uint64(binary.LittleEndian.Uint16(out[off:]))
						got = f16.ToFloat32(uint16(raw))
					}
					row, col := e/ldc, e%ldc
					if row >= m || col >= n {
						if want := uint64(1)<<(8*esize) - 1; raw != want {
							t.Fatalf("item %d: element %d outside C changed to %#x", it, e, raw)
						}
						continue
					}
					want := ref[row*n+col]
					tol := 1e-4 + 1e-5*math.Abs(want)
					if !tc.outF32 {
						tol = 1e-3 + math.Abs(want)/1024
					}
					if math.Abs(float64(got)-want) > tol {
						t.Fatalf("item %d C[%d,%d] = %g, want %g", it, row, col, got, want)
					}
				}
			}
		})
	}

	if err := bl.GemmF16(s, m, n, k, 0, lda, 0, 0, ldb, 0, 0, n-1, 0, 1, true); err == nil || errors.Is(err, ErrDevice) {
		t.Errorf("GemmF16 with ldc < n: %v; want an argument error", err)
	}
	if err := bl.GemmF16(s, m, n, k, 0, lda, 0, 0, ldb, 0, 0, ldc, 0, 2, true); err == nil {
		t.Error("GemmF16 with overlapping outputs succeeded")
	}
	ok(t, bl.GemmF16(s, 0, n, k, 0, lda, 0, 0, ldb, 0, 0, ldc, 0, 2, true))
}

// BenchmarkDo measures one hop to the device's thread and back.
func BenchmarkDo(b *testing.B) {
	d := openDevice(b)
	b.ReportAllocs()
	for b.Loop() {
		if err := d.Do(func() error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLaunch measures enqueueing a small kernel from another goroutine.
func BenchmarkLaunch(b *testing.B) {
	d := openDevice(b)
	mod, err := d.LoadPTX(saxpbPTX)
	ok(b, err)
	fn, err := mod.Function("saxpb")
	ok(b, err)
	p, err := d.Alloc(4 * 256)
	ok(b, err)
	s, err := d.NewStream()
	ok(b, err)
	b.ReportAllocs()
	for b.Loop() {
		if err := fn.Launch(Dim3{X: 1}, Dim3{X: 256}, 0, s, p, p, float32(1), float32(0), uint32(256)); err != nil {
			b.Fatal(err)
		}
	}
	ok(b, s.Synchronize())
	b.StopTimer()
	ok(b, errors.Join(s.Close(), d.Free(p), mod.Close()))
}

// BenchmarkGemmF16 measures a [4096 x 128] @ [128 x 1024] half GEMM with a
// half result.
func BenchmarkGemmF16(b *testing.B) {
	d := openDevice(b)
	bl, err := d.NewBLAS()
	ok(b, err)
	const m, n, k = 4096, 1024, 128
	ad, err := d.Alloc(2 * m * k)
	ok(b, err)
	bd, err := d.Alloc(2 * k * n)
	ok(b, err)
	cd, err := d.Alloc(2 * m * n)
	ok(b, err)
	ok(b, errors.Join(d.Memset(ad, 2*m*k, nil), d.Memset(bd, 2*k*n, nil)))
	ok(b, d.Synchronize())
	b.SetBytes(2 * m * n)
	for b.Loop() {
		ok(b, bl.GemmF16(nil, m, n, k, ad, k, 0, bd, n, 0, cd, n, 0, 1, false))
	}
	ok(b, d.Synchronize())
	b.StopTimer()
	ok(b, errors.Join(d.Free(ad), d.Free(bd), d.Free(cd), bl.Close()))
}
