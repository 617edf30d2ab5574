package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/pflag"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/dataset"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// inputHelp says what inspect, verify and decode read.
const inputHelp = `IN is a .ntcb file, a dataset (its directory or its index.json), or an
http(s) URL of either, read with Range requests: only the footer, index and
the chunks (or samples) wanted are fetched, with retries on transient
errors, and every checksum is checked as for a local file. A file that holds
its model by reference finds it by its SHA-256: in the files --model names,
then next to the file (the model file its metadata names, its dataset's
models, any .ntcm in its directory).`

// readFlags say where to find the models that files hold by reference;
// inspect, verify and decode share them.
type readFlags struct {
	models []string
}

func (r *readFlags) addFlags(f *pflag.FlagSet) {
	f.StringArrayVar(&r.models, "model", nil, "a model file (.ntcm) for files that hold their model by reference (repeatable; by default it is looked for next to the file)")
}

// options returns the dataset options the flags ask for.
func (r *readFlags) options() *dataset.Options {
	m := ntcb.NewModels()
	for _, p := range r.models {
		m.AddFile(p)
	}
	return &dataset.Options{Models: m}
}

// input is a .ntcb file or a dataset open for reading.
type input struct {
	loc       string
	file      *ntcb.Reader // a single file, or nil
	closeFile func() error
	ds        *dataset.Reader // a dataset, or nil
}

// openInput opens loc: a .ntcb file, a dataset directory or index.json, or
// an http(s) URL of either; "-" reads a .ntcb file from standard input
// (through a temporary file), finding a model it holds by reference in
// the --model files or the current directory.
func openInput(ctx context.Context, g *globals, loc string, rf *readFlags) (*input, error) {
	o := rf.options()
	in := &input{loc: loc}
	if loc == "-" {
		f, size, done, err := g.spoolStdin()
		if err != nil {
			return nil, err
		}
		in.loc = stdinName
		if in.file, err = ntcb.NewReader(f, size, stdinReadOptions(o)...); err != nil {
			done()
			return nil, fmt.Errorf("%s: %w", stdinName, err)
		}
		in.closeFile = done
		return in, nil
	}
	kind, _, _, err := dataset.Resolve(loc, o.Remote)
	if err != nil {
		return nil, err
	}
	if kind == dataset.KindDataset {
		in.ds, err = dataset.Open(ctx, loc, o)
	} else {
		var fr *dataset.FileReader
		if fr, err = dataset.OpenFile(ctx, loc, o); err == nil {
			in.file, in.closeFile = fr.Reader, fr.Close
		}
	}
	if err != nil {
		return nil, err
	}
	return in, nil
}

// stdinReadOptions are the read options of a file from standard input.
func stdinReadOptions(o *dataset.Options) []ntcb.ReadOption {
	return []ntcb.ReadOption{ntcb.WithModels(o.Models), ntcb.WithName(stdinName), ntcb.WithLocator(ntcb.DirLocator("."))}
}

func (in *input) Close() error {
	if in.ds != nil {
		return in.ds.Close()
	}
	return in.closeFile()
}

// Len returns the number of samples.
func (in *input) Len() int {
	if in.ds != nil {
		return in.ds.Len()
	}
	return in.file.Len()
}

// Lookup returns the index of the sample with the key.
func (in *input) Lookup(key string) (int, error) {
	if in.ds != nil {
		return in.ds.Lookup(key)
	}
	return in.file.Lookup(key)
}

// Layout returns the token layout of every sample.
func (in *input) Layout() codec.Layout {
	if in.ds != nil {
		return in.ds.Layout()
	}
	return in.file.Layout()
}

// DType returns the dtype the input was encoded from.
func (in *input) DType() string {
	if in.ds != nil {
		return in.ds.Index().DType
	}
	return in.file.Meta().DType
}

// export decodes the samples with the given indices, in that order, into
// w, on the CPU; each run of samples in one shard of a dataset is one
// ntcb.Export.
func (in *input) export(ctx context.Context, idx []int, w tensorio.Writer, p ntcb.Progress, workers int) error {
	return in.eachRun(idx, func(r *ntcb.Reader, samples []int) error {
		return ntcb.Export(ctx, r, samples, w, p, workers)
	})
}

// eachRun calls f with the file's reader and the indices, or for a dataset
// with each shard and the run of indices in it, in order.
func (in *input) eachRun(idx []int, f func(r *ntcb.Reader, samples []int) error) error {
	if in.ds == nil {
		return f(in.file, idx)
	}
	runs, err := in.ds.Runs(idx)
	if err != nil {
		return err
	}
	for _, run := range runs {
		r, release, err := in.ds.Shard(run.Shard)
		if err != nil {
			return err
		}
		err = f(r, run.Samples)
		release()
		if err != nil {
			return fmt.Errorf("%s: %w", in.ds.Store().Location(in.ds.Index().Shards[run.Shard].Name), err)
		}
	}
	return nil
}

var _ io.Closer = (*input)(nil)
