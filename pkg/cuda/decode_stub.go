//go:build !cuda

package cuda

import "context"

// NewDecoder makes a decoder that decodes on dev.
func NewDecoder(dev *Device, opts DecoderOptions) (*Decoder, error) { return nil, ErrNotBuilt }

// Bench measures GPU decoding of the .ntcb at ntcbPath against loading the
// float16 .npy at npyPath, which must hold the same tokens.
func Bench(ctx context.Context, dev *Device, ntcbPath, npyPath string, opts BenchOptions) (*BenchResult, error) {
	return nil, ErrNotBuilt
}
