//go:build !cuda

package cuda

// The API of the cuda build for a binary built without it: every function
// returns ErrNotBuilt or a zero value. It imports no cgo and no
// gorgonia.org/cu, whose init would stop the program on a machine without
// a GPU. runtime_stub_test.go checks that it matches runtime.go and
// blas.go.

import "time"

// Built reports whether this binary has CUDA support compiled in.
func Built() bool { return false }

// Device is a CUDA context on one GPU; without CUDA there is none.
type Device struct{}

// Open returns ErrNotBuilt.
func Open(ordinal int) (*Device, error) { return nil, ErrNotBuilt }

// Close returns ErrNotBuilt.
func (d *Device) Close() error { return ErrNotBuilt }

// Name returns "".
func (d *Device) Name() string { return "" }

// ComputeCapability returns 0, 0.
func (d *Device) ComputeCapability() (major, minor int) { return 0, 0 }

// TotalMemory returns 0.
func (d *Device) TotalMemory() int64 { return 0 }

// Do returns ErrNotBuilt without calling fn.
func (d *Device) Do(fn func() error) error { return ErrNotBuilt }

// Alloc returns ErrNotBuilt.
func (d *Device) Alloc(bytes int64) (DevPtr, error) { return 0, ErrNotBuilt }

// Free returns ErrNotBuilt.
func (d *Device) Free(p DevPtr) error { return ErrNotBuilt }

// Memset returns ErrNotBuilt.
func (d *Device) Memset(p DevPtr, bytes int64, s *Stream) error { return ErrNotBuilt }

// AllocHost returns ErrNotBuilt.
func (d *Device) AllocHost(bytes int) ([]byte, error) { return nil, ErrNotBuilt }

// FreeHost returns ErrNotBuilt.
func (d *Device) FreeHost(b []byte) error { return ErrNotBuilt }

// Stream is a CUDA stream; without CUDA there is none.
type Stream struct{}

// NewStream returns ErrNotBuilt.
func (d *Device) NewStream() (*Stream, error) { return nil, ErrNotBuilt }

// Close returns ErrNotBuilt.
func (s *Stream) Close() error { return ErrNotBuilt }

// Synchronize returns ErrNotBuilt.
func (s *Stream) Synchronize() error { return ErrNotBuilt }

// CopyHtoD returns ErrNotBuilt.
func (d *Device) CopyHtoD(dst DevPtr, src []byte, s *Stream) error { return ErrNotBuilt }

// CopyDtoH returns ErrNotBuilt.
func (d *Device) CopyDtoH(dst []byte, src DevPtr, bytes int64, s *Stream) error { return ErrNotBuilt }

// CopyDtoD returns ErrNotBuilt.
func (d *Device) CopyDtoD(dst, src DevPtr, bytes int64, s *Stream) error { return ErrNotBuilt }

// Synchronize returns ErrNotBuilt.
func (d *Device) Synchronize() error { return ErrNotBuilt }

// Event marks a point in a stream; without CUDA there is none.
type Event struct{}

// NewEvent returns ErrNotBuilt.
func (d *Device) NewEvent() (*Event, error) { return nil, ErrNotBuilt }

// Record returns ErrNotBuilt.
func (e *Event) Record(s *Stream) error { return ErrNotBuilt }

// Synchronize returns ErrNotBuilt.
func (e *Event) Synchronize() error { return ErrNotBuilt }

// Close returns ErrNotBuilt.
func (e *Event) Close() error { return ErrNotBuilt }

// Elapsed returns ErrNotBuilt.
func Elapsed(start, end *Event) (time.Duration, error) { return 0, ErrNotBuilt }

// Module is loaded GPU code; without CUDA there is none.
type Module struct{}

// LoadPTX returns ErrNotBuilt.
func (d *Device) LoadPTX(ptx string) (*Module, error) { return nil, ErrNotBuilt }

// Close returns ErrNotBuilt.
func (m *Module) Close() error { return ErrNotBuilt }

// Function is a kernel of a loaded module; without CUDA there is none.
type Function struct{}

// Function returns ErrNotBuilt.
func (m *Module) Function(name string) (*Function, error) { return nil, ErrNotBuilt }

// Launch returns ErrNotBuilt.
func (f *Function) Launch(grid, block Dim3, sharedBytes int, s *Stream, args ...any) error {
	return ErrNotBuilt
}

// BLAS is a cuBLAS handle; without CUDA there is none.
type BLAS struct{}

// NewBLAS returns ErrNotBuilt.
func (d *Device) NewBLAS() (*BLAS, error) { return nil, ErrNotBuilt }

// Close returns ErrNotBuilt.
func (b *BLAS) Close() error { return ErrNotBuilt }

// GemmF16 returns ErrNotBuilt.
func (b *BLAS) GemmF16(s *Stream, m, n, k int, a DevPtr, lda int, strideA int64, bm DevPtr, ldb int, strideB int64, c DevPtr, ldc int, strideC int64, batch int, outF32 bool) error {
	return ErrNotBuilt
}
