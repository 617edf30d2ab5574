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
	"github.com/ntc-project/ntc/pkg/codec"
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

// globals holds what every verb shares: the standard streams, --quiet and
// --progress.
type globals struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	quiet          bool
	progress       string
}

func newRootCmd(g *globals) *cobra.Command {
	root := &cobra.Command{
		Use:   "ntc",
		Short: "Compress vision-transformer tokens with a learned block codec",
		Long: `ntc compresses the visual tokens of vision transformers (ViT token dumps in
.npy, .npz or .safetensors) into .ntcb files: chunked, checksummed containers
with random access by sample, and decodes them back.

` + exitCodesHelp,
		Version:       toolVersion() + ", kernels " + kernelsDescription(),
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
	root.PersistentFlags().StringVar(&g.progress, "progress", "auto", "progress bars on stderr: auto (when it is a terminal), always, never")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		switch g.progress {
		case "auto", "always", "never":
			return nil
		}
		return usagef("--progress %q: want auto, always or never", g.progress)
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError{err} })
	root.AddCommand(
		newEncodeCmd(g, nil),
		newDecodeCmd(g, nil),
		newInspectCmd(g, nil),
		newVerifyCmd(g, nil),
		newFitCmd(g, nil),
		newIndexCmd(g, nil),
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

// progress draws a bar on stderr for long work, one bar a phase (the fit's
// reading, PCA and rate search, then the encode), when stderr is a
// terminal (or --progress always) and --quiet is off. It implements
// ntcb.Phaser. Each bar's clock starts when its phase does, so that its
// rate counts that phase's work over that phase's time.
type progress struct {
	w   io.Writer // nil: draw nothing
	bar *progressbar.ProgressBar
}

func (g *globals) newProgress(total int, what string) *progress {
	p := &progress{w: g.progressWriter()}
	p.Phase(what, total, "samples")
	return p
}

// progressWriter returns where bars go, or nil for none.
func (g *globals) progressWriter() io.Writer {
	if g.quiet || g.progress == "never" {
		return nil
	}
	if g.progress == "always" {
		return g.stderr
	}
	if f, ok := g.stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		return f
	}
	return nil
}

// Phase implements ntcb.Phaser: the bar of the previous phase goes, one
// for this phase comes (a spinner when total is unknown).
func (p *progress) Phase(name string, total int, unit string) {
	if p.w == nil {
		return
	}
	p.Done()
	if total <= 0 {
		total = -1
	}
	p.bar = progressbar.NewOptions(total,
		progressbar.OptionSetWriter(p.w),
		progressbar.OptionSetDescription(name),
		progressbar.OptionShowCount(),
		progressbar.OptionSetItsString(unit),
		progressbar.OptionShowIts(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionClearOnFinish(),
		progressbar.OptionSetPredictTime(true),
	)
	_ = p.bar.RenderBlank() // starts the bar's clock now
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
		p.bar = nil
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

// kernelsDescription names the vector level the kernels run at and, where
// the AVX2 entropy decoder runs, how it reads its tables.
func kernelsDescription() string { return kernelsLine(cpufeat.Describe(), codec.TableReads()) }

// kernelsLine joins a vector level and a way of reading tables (possibly
// none), as --version and the bench table print them.
func kernelsLine(vector, tableReads string) string {
	if tableReads == "" {
		return vector
	}
	return vector + ", table reads: " + tableReads
}
