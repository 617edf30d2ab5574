//go:build cuda

package cuda

// The CUDA driver side: contexts, memory, streams, events, modules and
// launches, mostly through gorgonia.org/cu. Pinned host memory and error
// names go through cgo directly: gorgonia does not wrap cuMemAllocHost, and
// its error strings do not know the codes added after CUDA 11.

/*
#cgo LDFLAGS: -lcuda
#include <stddef.h>
#include <cuda.h>

static void *ntc_mem_alloc_host(size_t n, CUresult *res) {
	void *p = NULL;
	*res = cuMemAllocHost(&p, n);
	return p;
}

static const char *ntc_error_name(CUresult r) {
	const char *s = NULL;
	if (cuGetErrorName(r, &s) != CUDA_SUCCESS) return NULL;
	return s;
}

static const char *ntc_error_string(CUresult r) {
	const char *s = NULL;
	if (cuGetErrorString(r, &s) != CUDA_SUCCESS) return NULL;
	return s;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"gorgonia.org/cu"
)

// Built reports whether this binary has CUDA support compiled in.
func Built() bool { return true }

var errClosed = errors.New("cuda: device is closed")

// driverError is a CUresult other than CUDA_SUCCESS, named by the driver
// that runs (so codes newer than the headers get their names too).
type driverError int

func (e driverError) Error() string {
	name, text := "CUDA error", ""
	if s := C.ntc_error_name(C.CUresult(e)); s != nil {
		name = C.GoString(s)
	}
	if s := C.ntc_error_string(C.CUresult(e)); s != nil {
		text = ": " + C.GoString(s)
	}
	return fmt.Sprintf("%s (%d)%s", name, int(e), text)
}

// check wraps a failure of the call described by format and args with
// ErrDevice; it returns nil when err is nil. Errors of gorgonia.org/cu (a
// CUresult in an unexported integer type; its names stop at CUDA 11)
// become driverErrors.
func check(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if v := reflect.ValueOf(err); v.Kind() == reflect.Int && v.Type().PkgPath() == "gorgonia.org/cu" {
		err = driverError(v.Int())
	}
	return fmt.Errorf("cuda: %s: %w: %w", fmt.Sprintf(format, args...), ErrDevice, err)
}

// Device is a CUDA context on one GPU (the device's primary context),
// current on one locked OS thread that runs the work of all its methods.
// Methods may be called from any goroutine.
type Device struct {
	ordinal      int
	dev          cu.Device
	name         string
	major, minor int
	totalMem     int64

	ctx  cu.CUContext // set by serve before Open returns
	tid  atomic.Int32 // Linux thread id of serve's thread; 0 once it stopped
	work chan func()

	mu     sync.RWMutex // read-held to send to work or to wait; write-held to close
	closed bool

	pinMu  sync.Mutex
	pinned map[uintptr][]byte // AllocHost's blocks by address
}

// Open makes device ordinal's context current on a new locked OS thread.
// cuInit has been called by gorgonia.org/cu's package init. Open fails
// with an error wrapping ErrDevice when there is no such device.
func Open(ordinal int) (*Device, error) {
	n, err := cu.NumDevices()
	if err != nil {
		return nil, check(err, "cuDeviceGetCount")
	}
	if ordinal < 0 || ordinal >= n {
		return nil, fmt.Errorf("cuda: device %d: %w: the machine has %d CUDA devices", ordinal, ErrDevice, n)
	}
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, check(err, "cuDeviceGet(%d)", ordinal)
	}
	d := &Device{ordinal: ordinal, dev: dev, work: make(chan func()), pinned: map[uintptr][]byte{}}
	if d.name, err = dev.Name(); err != nil {
		return nil, check(err, "cuDeviceGetName(%d)", ordinal)
	}
	if d.major, err = dev.Attribute(cu.ComputeCapabilityMajor); err != nil {
		return nil, check(err, "cuDeviceGetAttribute(%d, compute capability)", ordinal)
	}
	if d.minor, err = dev.Attribute(cu.ComputeCapabilityMinor); err != nil {
		return nil, check(err, "cuDeviceGetAttribute(%d, compute capability)", ordinal)
	}
	if d.totalMem, err = dev.TotalMem(); err != nil {
		return nil, check(err, "cuDeviceTotalMem(%d)", ordinal)
	}
	ready := make(chan error, 1)
	go d.serve(ready)
	if err := <-ready; err != nil {
		return nil, err
	}
	return d, nil
}

// serve is the device's goroutine: it makes the context current on its
// thread and runs the work sent to d.work until that is closed. It never
// unlocks its thread, so the thread ends with it and takes the context's
// currency along.
func (d *Device) serve(ready chan<- error) {
	runtime.LockOSThread()
	ctx, err := d.dev.RetainPrimaryCtx()
	if err != nil {
		ready <- check(err, "cuDevicePrimaryCtxRetain(%d)", d.ordinal)
		return
	}
	if err := cu.SetCurrentContext(ctx); err != nil {
		_ = d.dev.ReleasePrimaryCtx()
		ready <- check(err, "cuCtxSetCurrent")
		return
	}
	d.ctx = ctx
	d.tid.Store(int32(syscall.Gettid()))
	ready <- nil
	for f := range d.work {
		f()
	}
	d.tid.Store(0)
}

// onThread reports whether the caller runs on the device's goroutine (in a
// function given to Do). A goroutine locked to a thread is the only one
// that runs there, and tid is cleared before that thread can end and its
// id be reused.
func (d *Device) onThread() bool {
	tid := d.tid.Load()
	return tid != 0 && tid == int32(syscall.Gettid())
}

// Close synchronizes the device, frees the pinned host memory that
// AllocHost returned and is not yet freed, and releases the context. When
// no other Device holds the same GPU's context, all device memory,
// streams, events, modules and BLAS handles made through it go with it.
// Nothing made through d may be used afterwards, and slices from AllocHost
// must not be touched. Closing twice is a no-op; Close must not be called
// from a function given to Do.
func (d *Device) Close() error {
	if d.onThread() {
		return errors.New("cuda: Device.Close called from inside Device.Do")
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	d.mu.Unlock()

	errc := make(chan error, 1)
	d.work <- func() {
		err := check(cu.Synchronize(), "cuCtxSynchronize")
		d.pinMu.Lock()
		for base, b := range d.pinned {
			if e := C.cuMemFreeHost(unsafe.Pointer(unsafe.SliceData(b))); e != C.CUDA_SUCCESS && err == nil {
				err = check(driverError(e), "cuMemFreeHost")
			}
			delete(d.pinned, base)
		}
		d.pinMu.Unlock()
		if e := cu.SetCurrentContext(cu.CUContext{}); e != nil && err == nil {
			err = check(e, "cuCtxSetCurrent(NULL)")
		}
		if e := d.dev.ReleasePrimaryCtx(); e != nil && err == nil {
			err = check(e, "cuDevicePrimaryCtxRelease(%d)", d.ordinal)
		}
		errc <- err
	}
	close(d.work)
	return <-errc
}

// Name returns the device's name, such as "NVIDIA H100 80GB HBM3".
func (d *Device) Name() string { return d.name }

// ComputeCapability returns the device's compute capability (9, 0 for an
// H100).
func (d *Device) ComputeCapability() (major, minor int) { return d.major, d.minor }

// TotalMemory returns the device's memory in bytes.
func (d *Device) TotalMemory() int64 { return d.totalMem }

// Do runs fn on the device's thread, where the context is current, and
// returns its error. Every method that calls CUDA does its work through
// Do, so callers may call them from any goroutine; a caller may also batch
// several calls in one Do to save the hops. Methods called inside fn run
// directly. fn must not call Close.
func (d *Device) Do(fn func() error) error {
	if d.onThread() {
		return fn()
	}
	errc := make(chan error, 1)
	d.mu.RLock()
	if d.closed {
		d.mu.RUnlock()
		return errClosed
	}
	d.work <- func() { errc <- fn() }
	d.mu.RUnlock()
	return <-errc
}

// wait runs fn, which waits for the GPU, on the caller's thread with the
// context pushed there, so that the wait does not hold up Do.
func (d *Device) wait(fn func() error) error {
	if d.onThread() {
		return fn()
	}
	d.mu.RLock()
	defer d.mu.RUnlock()
	if d.closed {
		return errClosed
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.PushCurrentCtx(d.ctx); err != nil {
		return check(err, "cuCtxPushCurrent")
	}
	err := fn()
	if _, e := cu.PopCurrentCtx(); e != nil && err == nil {
		return check(e, "cuCtxPopCurrent")
	}
	return err
}

// Alloc allocates bytes of device memory (cuMemAlloc); it is not zeroed.
func (d *Device) Alloc(bytes int64) (DevPtr, error) {
	if bytes <= 0 {
		return 0, fmt.Errorf("cuda: Alloc(%d): size must be positive", bytes)
	}
	var p cu.DevicePtr
	err := d.Do(func() error {
		var err error
		p, err = cu.MemAlloc(bytes)
		return check(err, "cuMemAlloc(%d bytes)", bytes)
	})
	return DevPtr(p), err
}

// Free frees device memory from Alloc. Free(0) does nothing.
func (d *Device) Free(p DevPtr) error {
	if p == 0 {
		return nil
	}
	return d.Do(func() error {
		return check(cu.MemFree(cu.DevicePtr(p)), "cuMemFree(%#x)", uintptr(p))
	})
}

// Memset sets bytes bytes at p to zero, enqueued on s (nil: the default
// stream) with cuMemsetD8Async.
func (d *Device) Memset(p DevPtr, bytes int64, s *Stream) error {
	if bytes < 0 {
		return fmt.Errorf("cuda: Memset of %d bytes", bytes)
	}
	if bytes == 0 {
		return nil
	}
	h, err := d.stream(s)
	if err != nil {
		return err
	}
	return d.Do(func() error {
		return check(cu.MemsetD8Async(cu.DevicePtr(p), 0, bytes, h), "cuMemsetD8Async(%#x, %d bytes)", uintptr(p), bytes)
	})
}

// AllocHost returns bytes of page-locked (pinned) host memory, which async
// copies need to overlap with the host (cuMemAllocHost). It is C memory,
// not seen by the garbage collector: free it with FreeHost; Close frees
// what is left.
func (d *Device) AllocHost(bytes int) ([]byte, error) {
	if bytes <= 0 {
		return nil, fmt.Errorf("cuda: AllocHost(%d): size must be positive", bytes)
	}
	var b []byte
	err := d.Do(func() error {
		var res C.CUresult
		p := C.ntc_mem_alloc_host(C.size_t(bytes), &res)
		if res != C.CUDA_SUCCESS {
			return check(driverError(res), "cuMemAllocHost(%d bytes)", bytes)
		}
		b = unsafe.Slice((*byte)(p), bytes)
		return nil
	})
	if err != nil {
		return nil, err
	}
	d.pinMu.Lock()
	d.pinned[uintptr(unsafe.Pointer(unsafe.SliceData(b)))] = b
	d.pinMu.Unlock()
	return b, nil
}

// FreeHost frees memory from AllocHost. b must start where the block that
// AllocHost returned starts.
func (d *Device) FreeHost(b []byte) error {
	base := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	d.pinMu.Lock()
	block, ok := d.pinned[base]
	delete(d.pinned, base)
	d.pinMu.Unlock()
	if !ok {
		return fmt.Errorf("cuda: FreeHost(%#x): not a block from this device's AllocHost", base)
	}
	return d.Do(func() error {
		if res := C.cuMemFreeHost(unsafe.Pointer(unsafe.SliceData(block))); res != C.CUDA_SUCCESS {
			return check(driverError(res), "cuMemFreeHost(%#x)", base)
		}
		return nil
	})
}

// Stream is a CUDA stream: work enqueued on it runs in order, and
// concurrently with work on other streams.
type Stream struct {
	d      *Device
	s      cu.Stream
	closed atomic.Bool
}

// NewStream creates a stream (cuStreamCreate, CU_STREAM_DEFAULT flags: it
// synchronizes with the default stream).
func (d *Device) NewStream() (*Stream, error) {
	s := &Stream{d: d}
	err := d.Do(func() error {
		var err error
		s.s, err = cu.MakeStream(cu.DefaultStream)
		return check(err, "cuStreamCreate")
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// stream returns the handle of s for d's methods; nil is the default
// stream.
func (d *Device) stream(s *Stream) (cu.Stream, error) {
	switch {
	case s == nil:
		return cu.Stream{}, nil
	case s.d != d:
		return cu.Stream{}, errors.New("cuda: stream of another device")
	case s.closed.Load():
		return cu.Stream{}, errors.New("cuda: stream is closed")
	}
	return s.s, nil
}

// Close destroys the stream; work already enqueued still completes.
// Closing twice is a no-op.
func (s *Stream) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	h := s.s // Destroy zeroes the value it is called on.
	return s.d.Do(func() error { return check(h.Destroy(), "cuStreamDestroy") })
}

// Synchronize waits until the work enqueued on s is done.
func (s *Stream) Synchronize() error {
	h, err := s.d.stream(s)
	if err != nil {
		return err
	}
	return s.d.wait(func() error { return check(h.Synchronize(), "cuStreamSynchronize") })
}

// CopyHtoD copies src to dst. With s == nil the copy is synchronous. With
// a stream it is enqueued on s; when src is pinned (AllocHost) the call
// returns at once and src must stay unchanged until s has done the copy,
// while from ordinary (pageable) memory the driver stages src before
// returning.
func (d *Device) CopyHtoD(dst DevPtr, src []byte, s *Stream) error {
	if len(src) == 0 {
		return nil
	}
	h, err := d.stream(s)
	if err != nil {
		return err
	}
	n := int64(len(src))
	return d.Do(func() error {
		p := unsafe.Pointer(unsafe.SliceData(src))
		if s == nil {
			return check(cu.MemcpyHtoD(cu.DevicePtr(dst), p, n), "cuMemcpyHtoD(%d bytes)", n)
		}
		return check(cu.MemcpyHtoDAsync(cu.DevicePtr(dst), p, n, h), "cuMemcpyHtoDAsync(%d bytes)", n)
	})
}

// CopyDtoH copies bytes bytes from src to dst[:bytes]. With s == nil the
// copy is synchronous. With a stream it is enqueued on s; when dst is
// pinned (AllocHost) the call returns at once and dst holds the data once
// s has done the copy, while into ordinary (pageable) memory the call
// returns when the copy is done.
func (d *Device) CopyDtoH(dst []byte, src DevPtr, bytes int64, s *Stream) error {
	if bytes < 0 || bytes > int64(len(dst)) {
		return fmt.Errorf("cuda: CopyDtoH of %d bytes into %d", bytes, len(dst))
	}
	if bytes == 0 {
		return nil
	}
	h, err := d.stream(s)
	if err != nil {
		return err
	}
	return d.Do(func() error {
		p := unsafe.Pointer(unsafe.SliceData(dst))
		if s == nil {
			return check(cu.MemcpyDtoH(p, cu.DevicePtr(src), bytes), "cuMemcpyDtoH(%d bytes)", bytes)
		}
		return check(cu.MemcpyDtoHAsync(p, cu.DevicePtr(src), bytes, h), "cuMemcpyDtoHAsync(%d bytes)", bytes)
	})
}

// CopyDtoD copies bytes bytes from src to dst on the device, enqueued on s
// (nil: the default stream).
func (d *Device) CopyDtoD(dst, src DevPtr, bytes int64, s *Stream) error {
	if bytes < 0 {
		return fmt.Errorf("cuda: CopyDtoD of %d bytes", bytes)
	}
	if bytes == 0 {
		return nil
	}
	h, err := d.stream(s)
	if err != nil {
		return err
	}
	return d.Do(func() error {
		return check(cu.MemcpyDtoDAsync(cu.DevicePtr(dst), cu.DevicePtr(src), bytes, h), "cuMemcpyDtoDAsync(%d bytes)", bytes)
	})
}

// Synchronize waits until all work on the device is done
// (cuCtxSynchronize). Errors of earlier asynchronous work surface here.
func (d *Device) Synchronize() error {
	return d.wait(func() error { return check(cu.Synchronize(), "cuCtxSynchronize") })
}

// Event marks a point in a stream, for timing and waiting.
type Event struct {
	d      *Device
	ev     cu.Event
	closed atomic.Bool
}

// NewEvent creates an event that records time (cuEventCreate,
// CU_EVENT_DEFAULT).
func (d *Device) NewEvent() (*Event, error) {
	e := &Event{d: d}
	err := d.Do(func() error {
		var err error
		e.ev, err = cu.MakeEvent(cu.DefaultEvent)
		return check(err, "cuEventCreate")
	})
	if err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Event) usable() error {
	if e.closed.Load() {
		return errors.New("cuda: event is closed")
	}
	return nil
}

// Record enqueues the event on s (nil: the default stream).
func (e *Event) Record(s *Stream) error {
	if err := e.usable(); err != nil {
		return err
	}
	h, err := e.d.stream(s)
	if err != nil {
		return err
	}
	return e.d.Do(func() error { return check(e.ev.Record(h), "cuEventRecord") })
}

// Synchronize waits until the work before the event's last Record is done.
func (e *Event) Synchronize() error {
	if err := e.usable(); err != nil {
		return err
	}
	return e.d.wait(func() error { return check(e.ev.Synchronize(), "cuEventSynchronize") })
}

// Close destroys the event. Closing twice is a no-op.
func (e *Event) Close() error {
	if e.closed.Swap(true) {
		return nil
	}
	ev := e.ev // DestroyEvent zeroes the value it is given.
	return e.d.Do(func() error { return check(cu.DestroyEvent(&ev), "cuEventDestroy") })
}

// Elapsed returns the GPU time between two recorded events of one device
// (cuEventElapsedTime, resolution about half a microsecond). Both must
// have completed: synchronize end first.
func Elapsed(start, end *Event) (time.Duration, error) {
	if start == nil || end == nil || start.d != end.d {
		return 0, errors.New("cuda: Elapsed needs two events of one device")
	}
	if err := errors.Join(start.usable(), end.usable()); err != nil {
		return 0, err
	}
	var ms float64
	err := start.d.Do(func() error {
		var err error
		ms, err = start.ev.Elapsed(end.ev)
		return check(err, "cuEventElapsedTime")
	})
	return time.Duration(math.Round(ms * float64(time.Millisecond))), err
}

// Module is loaded GPU code: the kernels of one PTX text.
type Module struct {
	d      *Device
	mod    cu.Module
	closed atomic.Bool
}

// jitLogBytes is the size of the buffer for the PTX compiler's error log.
const jitLogBytes = 16 << 10

// LoadPTX compiles PTX text for the device and loads it
// (cuModuleLoadDataEx). PTX made for an older target (for example
// ".target sm_80" from clang) is compiled for the device at hand. On
// failure the error carries the compiler's log.
func (d *Device) LoadPTX(ptx string) (*Module, error) {
	if ptx == "" {
		return nil, errors.New("cuda: LoadPTX: empty PTX")
	}
	m := &Module{d: d}
	err := d.Do(func() error {
		// The driver writes the log through a bare address: keep it in C
		// memory, where the Go runtime cannot move it.
		buf := C.calloc(jitLogBytes, 1)
		if buf == nil {
			return errors.New("cuda: LoadPTX: out of memory for the JIT log")
		}
		defer C.free(buf)
		// One byte short of the buffer, so that the log ends in a NUL.
		log := unsafe.Slice((*byte)(buf), jitLogBytes-1)
		var err error
		m.mod, err = cu.LoadDataEx(ptx, &cu.JITErrorLogBuffer{Buffer: log})
		if err == nil {
			return nil
		}
		if msg := strings.TrimSpace(C.GoString((*C.char)(buf))); msg != "" {
			return check(err, "cuModuleLoadDataEx (PTX compiler log: %s)", msg)
		}
		return check(err, "cuModuleLoadDataEx")
	})
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Close unloads the module (cuModuleUnload); its functions must not be
// launched afterwards. Closing twice is a no-op.
func (m *Module) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	return m.d.Do(func() error { return check(m.mod.Unload(), "cuModuleUnload") })
}

// Function is a kernel of a loaded module.
type Function struct {
	m    *Module
	fn   cu.Function
	name string
}

// Function looks up the kernel called name (its .entry name in the PTX).
func (m *Module) Function(name string) (*Function, error) {
	if m.closed.Load() {
		return nil, errors.New("cuda: module is unloaded")
	}
	f := &Function{m: m, name: name}
	err := m.d.Do(func() error {
		var err error
		f.fn, err = m.mod.Function(name)
		return check(err, "cuModuleGetFunction(%q)", name)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Launch launches f on grid x block threads with sharedBytes of dynamic
// shared memory, enqueued on s (nil: the default stream). args are the
// kernel's parameters in order; each is a DevPtr, int, int32, int64,
// uint32, uint64 or float32, and goes in its own 8-byte slot whose low
// bytes the kernel reads (gorgonia.org/cu copies 8 bytes from behind every
// parameter pointer): an int fills a .u32, .s32, .u64 or .s64 parameter, a
// float32 fills an .f32 one. Launch errors that only show when the kernel
// runs are reported by a later call, such as Synchronize.
func (f *Function) Launch(grid, block Dim3, sharedBytes int, s *Stream, args ...any) error {
	if f.m.closed.Load() {
		return errors.New("cuda: launch of a function of an unloaded module")
	}
	gx, gy, gz, ok1 := dims(grid)
	bx, by, bz, ok2 := dims(block)
	if !ok1 || !ok2 || sharedBytes < 0 {
		return fmt.Errorf("cuda: launch %s: bad shape: grid %v block %v shared %d bytes", f.name, grid, block, sharedBytes)
	}
	d := f.m.d
	h, err := d.stream(s)
	if err != nil {
		return err
	}
	slots := make([]uint64, len(args))
	params := make([]unsafe.Pointer, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case DevPtr:
			slots[i] = uint64(v)
		case int:
			slots[i] = uint64(v)
		case int32:
			slots[i] = uint64(v)
		case int64:
			slots[i] = uint64(v)
		case uint32:
			slots[i] = uint64(v)
		case uint64:
			slots[i] = v
		case float32:
			slots[i] = uint64(math.Float32bits(v))
		default:
			return fmt.Errorf("cuda: launch %s: argument %d is a %T; want DevPtr, int, int32, int64, uint32, uint64 or float32", f.name, i, a)
		}
		params[i] = unsafe.Pointer(&slots[i])
	}
	err = d.Do(func() error {
		return check(f.fn.Launch(gx, gy, gz, bx, by, bz, sharedBytes, h, params),
			"cuLaunchKernel(%s, grid %dx%dx%d, block %dx%dx%d, %d shared bytes)", f.name, gx, gy, gz, bx, by, bz, sharedBytes)
	})
	runtime.KeepAlive(slots)
	return err
}

// dims returns a launch shape with zero Y and Z as 1; ok is false when a
// dimension is out of range.
func dims(d Dim3) (x, y, z int, ok bool) {
	x, y, z = d.X, max(d.Y, 1), max(d.Z, 1)
	in := func(v int) bool { return v >= 1 && v <= math.MaxInt32 }
	return x, y, z, in(x) && d.Y >= 0 && d.Z >= 0 && in(y) && in(z)
}
