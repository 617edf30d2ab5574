package main

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"

	"github.com/spf13/pflag"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// addForceFlag adds --force (-f), which lets a command replace an
// existing output file.
func addForceFlag(f *pflag.FlagSet, force *bool) {
	f.BoolVarP(force, "force", "f", false, "replace the output file if it exists")
}

// checkOutput checks, before any work, that out may be written: it is not
// one of the inputs (the same file, whatever the path), and it does not
// exist unless force. inputs are input specs (FILE or FILE:NAME). When
// out's extension is none of exts it warns on stderr that the file will be
// what (e.g. "an .ntcb file") all the same.
func (g *globals) checkOutput(out string, inputs []string, force bool, what string, exts ...string) error {
	paths := make([]string, len(inputs))
	for i, in := range inputs {
		paths[i] = tensorio.SpecPath(in)
	}
	if err := fsutil.CheckOutput(out, paths, force); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%w; give --force to replace it", err)
		}
		return err
	}
	if len(exts) > 0 {
		if w := fsutil.ExtensionWarning(out, what, exts...); w != "" {
			g.warn("%s", w)
		}
	}
	return nil
}

// outputTo prepares a command's output out: "-" is standard output
// (dataOut: the stream, and globals that report on standard error),
// anything else a file checked with checkOutput. It returns the name to
// report the output by, the stream (nil for a file) and the globals to
// report with.
func (g *globals) outputTo(out string, inputs []string, force bool, what string, exts ...string) (string, *bufio.Writer, *globals, error) {
	if out == "-" {
		stream, info, err := g.dataOut()
		return stdoutName, stream, info, err
	}
	return out, nil, g, g.checkOutput(out, inputs, force, what, exts...)
}

// warn prints a warning on stderr, even with --quiet.
func (g *globals) warn(format string, a ...any) {
	fmt.Fprintf(g.stderr, "ntc: warning: "+format+"\n", a...)
}
