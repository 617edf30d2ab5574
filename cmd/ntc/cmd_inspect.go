package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/dataset"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

type inspectOptions struct {
	readFlags
	json   bool
	chunks bool
	keys   bool
}

func newInspectCmd(g *globals, runF func(context.Context, *inspectOptions, []string) error) *cobra.Command {
	o := &inspectOptions{}
	cmd := &cobra.Command{
		Use:   "inspect IN|MODEL.ntcm|-",
		Short: "Show a .ntcb file's, a dataset's or a model file's layout, codec, ratio and metadata",
		Long: `Inspect prints what a .ntcb file holds: token layout, samples, chunks, codec
and model size, ratio against float16 (float16 bytes of the tokens / bytes of
the whole file), and the metadata. It reads only the header and the index;
use 'ntc verify' to check the chunks. For a model file (.ntcm, from 'ntc
fit') it prints the codec, its parameters and the layout it was fitted on.

For a dataset it reads index.json only, and prints the same for the whole
dataset, with two ratios: over every file (the shards, the model once and
the index) and over the shards alone; --chunks lists the shards. With
--json, "kind" says which ("data", "model" or "dataset"). "-" reads a
.ntcb or .ntcm file from standard input.

` + inputHelp,
		Example: examples(
			"ntc inspect train.ntcb",
			"ntc inspect train.ntcb --chunks",
			"ntc inspect train.ntcb --json | jq .ratio",
			"ntc inspect data/ --chunks",
			"ntc inspect https://example.org/data/",
		),
		Args: exactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), o, args)
			}
			return runInspect(cmd.Context(), g, o, args[0])
		},
	}
	cmd.Flags().BoolVar(&o.json, "json", false, "print everything as JSON (chunks included)")
	cmd.Flags().BoolVar(&o.chunks, "chunks", false, "list every chunk (for a dataset: every shard) with its rate")
	cmd.Flags().BoolVar(&o.keys, "keys", false, "list every sample key (with --json: as \"keys\")")
	o.readFlags.addFlags(cmd.Flags())
	return cmd
}

func runInspect(ctx context.Context, g *globals, o *inspectOptions, in string) error {
	if in == "-" {
		return inspectStdin(g, o)
	}
	src, err := openInput(ctx, g, in, &o.readFlags)
	if errors.Is(err, ntcb.ErrKind) {
		m, err := ntcb.ReadModelFile(in)
		if err != nil {
			return err
		}
		fi, err := os.Stat(in)
		if err != nil {
			return err
		}
		return inspectModel(g, o, in, m, fi.Size())
	}
	if err != nil {
		return err
	}
	defer src.Close()
	if src.ds != nil {
		return inspectDataset(g, o, src.ds)
	}
	return inspectData(g, o, in, src.file)
}

// inspectStdin inspects a .ntcb or .ntcm file read from standard input.
func inspectStdin(g *globals, o *inspectOptions) error {
	f, size, done, err := g.spoolStdin()
	if err != nil {
		return err
	}
	defer done()
	r, err := ntcb.NewReader(f, size, stdinReadOptions(o.readFlags.options())...)
	if errors.Is(err, ntcb.ErrKind) {
		m, err := ntcb.ReadModel(f, size)
		if err != nil {
			return fmt.Errorf("%s: %w", stdinName, err)
		}
		return inspectModel(g, o, stdinName, m, size)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", stdinName, err)
	}
	return inspectData(g, o, stdinName, r)
}

// inspectData describes a data file (.ntcb).
func inspectData(g *globals, o *inspectOptions, in string, r *ntcb.Reader) error {
	info := r.Info()
	if o.json {
		out := struct {
			Kind string `json:"kind"`
			ntcb.Info
			Keys []string `json:"keys,omitempty"`
		}{Kind: "data", Info: info}
		if o.keys {
			out.Keys = make([]string, r.Len())
			for i := range out.Keys {
				out.Keys[i] = r.Key(i)
			}
		}
		return writeJSON(g, out)
	}
	printInfo(g.stdout, in, info)
	if o.chunks {
		tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "chunk\toffset\tbytes\tcodec\tfirst\tsamples\tbits/value\t")
		for _, c := range info.Chunks {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%s\t%d\t%d\t%.3f\t\n", c.Index, c.Offset, c.Bytes, c.Codec, c.FirstSample, c.Samples, c.BitsPerValue)
		}
		tw.Flush()
	}
	if o.keys {
		for i := range r.Len() {
			fmt.Fprintf(g.stdout, "%d\t%s\n", i, r.Key(i))
		}
	}
	return nil
}

// modelSummary describes a model for --json (fit, inspect).
type modelSummary struct {
	Codec      string         `json:"codec"`
	ModelBytes int            `json:"model_bytes"`
	Layout     codec.Layout   `json:"layout"`
	DType      string         `json:"dtype"`
	Params     map[string]any `json:"codec_params,omitempty"`
	// ModelVersion is the model's format version (the learned codec's).
	ModelVersion int    `json:"model_version,omitempty"`
	Tool         string `json:"tool,omitempty"`
	// The target the model was fitted for.
	TargetRatio   float64 `json:"target_ratio,omitempty"`
	TargetQuality string  `json:"target_quality,omitempty"`
}

func summarize(m *ntcb.Model) modelSummary {
	return modelSummary{m.Codec, len(m.Blob), m.Layout, m.DType, m.Params, m.ModelVersion(), m.Tool, m.TargetRatio, m.TargetQuality}
}

// codecLine names a codec and its model's version, if it has one.
func codecLine(name string, version int) string {
	if version > 0 {
		return fmt.Sprintf("%s (model version %d)", name, version)
	}
	return name
}

// printParams writes a codec's parameters one to a line, a nested map
// (the task metric's record) as its pairs on one line.
func printParams(tw io.Writer, params map[string]any) {
	label := "codec params"
	for _, k := range slices.Sorted(maps.Keys(params)) {
		v := params[k]
		if m, ok := v.(map[string]any); ok {
			v = sortedPairs(m)
		}
		fmt.Fprintf(tw, "%s\t%s=%v\n", label, k, v)
		label = ""
	}
}

// inspectModel describes a model file (.ntcm, from 'ntc fit').
func inspectModel(g *globals, o *inspectOptions, in string, m *ntcb.Model, size int64) error {
	if o.json {
		return writeJSON(g, struct {
			Kind      string `json:"kind"`
			FileBytes int64  `json:"file_bytes"`
			modelSummary
		}{"model", size, summarize(m)})
	}
	l := m.Layout
	tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s (model file, %d bytes)\n", in, size)
	fmt.Fprintf(tw, "codec\t%s, model %d bytes\n", codecLine(m.Codec, m.ModelVersion()), len(m.Blob))
	printParams(tw, m.Params)
	fmt.Fprintf(tw, "fitted on\t[%d tokens, %d dims], dtype %s\n", l.Tokens, l.Dim, m.DType)
	fmt.Fprintf(tw, "layout\t%d prefix + %dx%d grid\n", l.Prefix, l.GridH, l.GridW)
	switch {
	case m.TargetRatio > 0:
		fmt.Fprintf(tw, "fitted for\tratio %gx (files that hold the model by reference)\n", m.TargetRatio)
	case m.TargetQuality != "":
		fmt.Fprintf(tw, "fitted for\tquality %s on every chunk\n", m.TargetQuality)
	}
	fmt.Fprintf(tw, "written by\t%s\n", m.Tool)
	fmt.Fprintf(tw, "use\tntc encode INPUT... -o OUT.ntcb --model %s\n", in)
	return tw.Flush()
}

func printInfo(w io.Writer, path string, info ntcb.Info) {
	l, m := info.Layout, info.Metadata
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "file\t%s (format v%d, %d bytes)\n", path, info.Version, info.FileBytes)
	fmt.Fprintf(tw, "samples\t%d x [%d tokens, %d dims], input dtype %s\n", info.Samples, l.Tokens, l.Dim, m.DType)
	fmt.Fprintf(tw, "layout\t%d prefix + %dx%d grid\n", l.Prefix, l.GridH, l.GridW)
	fmt.Fprintf(tw, "codec\t%s, %s\n", codecLine(info.Codec, info.ModelVersion), modelLine(info))
	printParams(tw, m.CodecParams)
	fmt.Fprintf(tw, "chunks\t%d\n", len(info.Chunks))
	fmt.Fprintf(tw, "ratio\t%.3fx against float16 (%d bytes), %.3f bits/value\n", info.Ratio, info.FP16Bytes, info.BitsPerValue)
	fmt.Fprintf(tw, "written by\t%s\n", m.Tool)
	if len(m.Meta) > 0 {
		fmt.Fprintf(tw, "metadata\t%s\n", sortedPairs(anyMap(m.Meta)))
	}
	tw.Flush()
}

func sortedPairs(m map[string]any) string {
	s := ""
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			s += " "
		}
		s += fmt.Sprintf("%s=%v", k, m[k])
	}
	return s
}

// modelLine says where a file's model is.
func modelLine(info ntcb.Info) string {
	if len(info.ModelRefs) == 0 {
		return fmt.Sprintf("model %d bytes", info.ModelBytes)
	}
	m := info.ModelRefs[0]
	s := fmt.Sprintf("model by reference: %d bytes, sha256 %s", m.Bytes, m.SHA256)
	if m.File != "" {
		s += ", in " + m.File
	}
	return s
}

// inspectDataset prints what a dataset's index says.
func inspectDataset(g *globals, o *inspectOptions, r *dataset.Reader) error {
	info := r.Info()
	if o.json {
		out := struct {
			Kind string `json:"kind"`
			dataset.Info
			Keys []string `json:"keys,omitempty"`
		}{Kind: "dataset", Info: info}
		if o.keys {
			out.Keys = datasetKeys(r)
		}
		return writeJSON(g, out)
	}
	l, sz := info.Layout, info.Sizes
	tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', 0)
	fmt.Fprintf(tw, "dataset\t%s (dataset format v%d)\n", info.Location, info.Version)
	fmt.Fprintf(tw, "samples\t%d x [%d tokens, %d dims] in %d shards, input dtype %s\n", sz.Samples, l.Tokens, l.Dim, sz.Shards, info.DType)
	fmt.Fprintf(tw, "layout\t%d prefix + %dx%d grid\n", l.Prefix, l.GridH, l.GridW)
	fmt.Fprintf(tw, "codec\t%s\n", info.Codec)
	for _, m := range info.Models {
		fmt.Fprintf(tw, "model\t%s: %d bytes, model sha256 %s\n", m.Name, m.Bytes, m.ModelSHA256)
	}
	fmt.Fprintf(tw, "bytes\t%d in shards, %d in models, %d in the index\n", sz.ShardBytes, sz.ModelBytes, sz.IndexBytes)
	fmt.Fprintf(tw, "ratio\t%.3fx against float16 (%d bytes) over every file; %.3fx over the shards alone\n", sz.Ratio, sz.FP16Bytes, sz.ShardRatio)
	if info.Tool != "" {
		fmt.Fprintf(tw, "written by\t%s\n", info.Tool)
	}
	if len(info.Meta) > 0 {
		fmt.Fprintf(tw, "metadata\t%s\n", sortedPairs(anyMap(info.Meta)))
	}
	tw.Flush()
	if o.chunks {
		tw := tabwriter.NewWriter(g.stdout, 2, 8, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "shard\tfile\tbytes\tfirst\tsamples\tratio\t")
		for i, s := range info.Shards {
			fmt.Fprintf(tw, "%d\t%s\t%d\t%d\t%d\t%.3f\t\n", i, s.File, s.Bytes, s.FirstSample, s.Samples, s.Ratio)
		}
		tw.Flush()
	}
	if o.keys {
		for i, k := range datasetKeys(r) {
			fmt.Fprintf(g.stdout, "%d\t%s\n", i, k)
		}
	}
	return nil
}

func datasetKeys(r *dataset.Reader) []string {
	keys := make([]string, r.Len())
	for i := range keys {
		keys[i] = r.Key(i)
	}
	return keys
}

// anyMap converts user metadata for sortedPairs.
func anyMap(m map[string]string) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}
