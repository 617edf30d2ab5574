package ntcb

import (
	"context"
	"errors"
	"fmt"

	"github.com/ntc-project/ntc/internal/pipeline"
)

// ordered is pipeline.Ordered with a panic in fill or work returned as an
// error wrapping ErrInternal.
func ordered[J any](ctx context.Context, n, workers int, fill func(i int, j *J) error, work func(i int, j *J) error, emit func(i int, j *J) error) error {
	return internalErr(pipeline.Ordered(ctx, n, workers, fill, work, emit))
}

// Guard runs f and turns a panic in it into an error wrapping ErrInternal,
// with the panic's value and stack. Run the work of every goroutine that
// a library starts through it: a panic on one would otherwise end the
// process (exit 2, which reads as a usage error) before any caller could
// report it.
func Guard(f func() error) error { return internalErr(pipeline.Guard(f)) }

// internalErr wraps a *pipeline.PanicError in ErrInternal and returns
// other errors as they are.
func internalErr(err error) error {
	if pe := (*pipeline.PanicError)(nil); errors.As(err, &pe) {
		return fmt.Errorf("%w: %w", ErrInternal, pe)
	}
	return err
}
