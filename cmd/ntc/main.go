// Command ntc compresses the visual tokens of vision transformers into
// .ntcb files and decodes them back.
//
// Exit codes:
//
//	0    success
//	1    error: unreadable or unsupported input, I/O failure
//	2    usage: bad flags or arguments
//	3    integrity: a checksum mismatch or a damaged .ntcb file
//	4    internal error: a bug in ntc (the message asks for a report)
//	130  interrupted (Ctrl-C or SIGTERM); no partial output is left
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/dataset"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// Exit codes, documented in the package comment, --help and the README.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitCorrupt     = 3
	exitInternal    = 4
	exitInterrupted = 130
)

const exitCodesHelp = `Exit codes:
  0    success
  1    error: unreadable or unsupported input (not an .ntcb file, values a
       codec cannot hold), an output that exists (without --force) or is
       one of the inputs, I/O failure
  2    usage: bad flags or arguments
  3    integrity: a checksum mismatch or a damaged .ntcb file
  4    internal error: a bug in ntc (please report it)
  130  interrupted (Ctrl-C or SIGTERM); no partial output is left`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run executes the command line and maps its error to an exit code. A
// panic is reported as an internal error (exit 4) with its stack, never
// as the Go runtime's exit 2, which would read as a usage error.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, os.Stdin, stdout, stderr)
}

// runWith is run with the standard input given.
func runWith(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "ntc: internal error (a bug in ntc; please report it with this message): panic: %v\n%s", r, debug.Stack())
			code = exitInternal
		}
	}()
	root := newRootCmd(&globals{stdin: stdin, stdout: stdout, stderr: stderr})
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code = exitCode(ctx, err)
	fmt.Fprintf(stderr, "ntc: %v\n", err)
	if code == exitUsage {
		fmt.Fprintln(stderr, "Run 'ntc --help' for usage.")
	}
	return code
}

// usageError marks errors in flags or arguments.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func exitCode(ctx context.Context, err error) int {
	var ue usageError
	switch {
	case ctx.Err() != nil && errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue), errors.Is(err, codec.ErrOption):
		// Codec options come from flags.
		return exitUsage
	case errors.Is(err, ntcb.ErrInternal):
		return exitInternal
	case errors.Is(err, container.ErrChecksum), errors.Is(err, container.ErrCorrupt),
		errors.Is(err, container.ErrTruncated),
		errors.Is(err, ntcb.ErrCorrupt), errors.Is(err, codec.ErrCorrupt),
		errors.Is(err, dataset.ErrCorrupt), errors.Is(err, dataset.ErrMismatch):
		return exitCorrupt
	}
	// Anything else, container.ErrBadMagic (not an .ntcb file at all)
	// included, is bad input or an I/O failure.
	return exitError
}
