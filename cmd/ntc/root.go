package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ntc-project/ntc/internal/cpufeat"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

// toolVersion returns the version string, from the build's module
// information when no version was set at build time.
func toolVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// globals holds what every verb shares: the standard streams and --quiet.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	quiet          bool
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ntc",
		Short: "Compress vision-transformer tokens with a learned block codec",
		Long: `ntc compresses the visual tokens of vision transformers (ViT token dumps in
.npy, .npz or .safetensors) into .ntcb files: chunked, checksummed containers
with random access by sample, and decodes them back.

` + exitCodesHelp,
		Version:       toolVersion() + ", kernels " + cpufeat.Describe(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usagef("unknown command %q", args[0])
			}
			return cmd.Help()
		},
	}
	root.PersistentFlags().BoolVarP(&g.quiet, "quiet", "q", false, "print no progress and no summary line")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newEncodeCmd(g, nil),
		newDecodeCmd(g, nil),
		newInspectCmd(g, nil),
		newVerifyCmd(g, nil),
		newFitCmd(g, nil),
		newBenchCmd(g, nil),
	)
	return root
}

// exactArgs is cobra.ExactArgs reporting a usage error.
func exactArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) != n {
			return usagef("expected %d argument(s), got %d", n, len(args))
		}
		return nil
	}
}

// minArgs is cobra.MinimumNArgs reporting a usage error.
func minArgs(n int) cobra.PositionalArgs {
	return func(_ *cobra.Command, args []string) error {
		if len(args) < n {
			return usagef("expected at least %d argument(s), got %d", n, len(args))
		}
		return nil
	}
}

// progress draws a bar on stderr for long work, only when stderr is a
// terminal and --quiet is off. It implements ntcb.Progress.
type progress struct{ bar *progressbar.ProgressBar }

func (g *globals) newProgress(total int, what string) *progress {
	f, ok := g.stderr.(*os.File)
	if g.quiet || !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{bar: progressbar.NewOptions(total,
		progressbar.OptionSetWriter(f),
		progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString("samples"),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)}
}

// Add implements ntcb.Progress.
func (p *progress) Add(n int) {
	if p.bar != nil {
		_ = p.bar.Add(n)
	}
}

// Done removes the bar.
func (p *progress) Done() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// note prints a remark on stderr unless --quiet.
func (g *globals) note(format string, a ...any) {
	if !g.quiet {
		fmt.Fprintf(g.stderr, "ntc: note: "+format+"\n", a...)
	}
}

// summary prints a report line on stdout unless --quiet.
func (g *globals) summary(format string, a ...any) {
	if !g.quiet {
		fmt.Fprintf(g.stdout, format+"\n", a...)
	}
}

// examples indents example lines for cobra's Example field.
func examples(lines ...string) string {
	return "  " + strings.Join(lines, "\n  ")
}

// encodeMemoryLimit is the soft limit on the Go heap that encode and fit
// set unless the user set GOMEMLIMIT: it keeps a default encode of any
// dataset near 400 MB of resident memory (the learned codec's fit would
// otherwise let garbage pile up to about 1.4 times that), at a few
// percent of speed.
const encodeMemoryLimit = 400 << 20

// limitMemory applies encodeMemoryLimit when GOMEMLIMIT is not set.
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(encodeMemoryLimit)
	}
}
