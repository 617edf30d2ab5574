package main

import (
	"bufio"
	"os"

	"golang.org/x/term"

	"github.com/ntc-project/ntc/internal/fsutil"
)

// stdinName and stdoutName name the standard streams in messages.
const (
	stdinName  = "<stdin>"
	stdoutName = "<stdout>"
)

// dataOut returns a buffered writer on standard output for a command's
// data (-o -), refusing a terminal. The command's report then goes to
// standard error: the returned globals print there.
func (g *globals) dataOut() (*bufio.Writer, *globals, error) {
	if f, ok := g.stdout.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return nil, nil, usagef("-o -: refusing to write binary data to a terminal; redirect standard output or give -o FILE")
	}
	info := *g
	info.stdout = g.stderr
	return bufio.NewWriterSize(g.stdout, 1<<20), &info, nil
}

// spoolStdin copies standard input into a temporary file (fsutil.Spool),
// for readers that need random access.
func (g *globals) spoolStdin() (*os.File, int64, func() error, error) {
	return fsutil.Spool(g.stdin)
}
