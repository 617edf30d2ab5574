package ntcb

import (
	"context"
	"fmt"
	"io"
	"path/filepath"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
)

// Model is a codec fitted on a sample of a dataset, kept in its own file
// (.ntcm) so that one model encodes any number of shards.
type Model struct {
	// Codec is the codec's registered name.
	Codec string
	// Layout is the token layout the model was fitted for.
	Layout codec.Layout
	// DType is the dtype of the data it was fitted on.
	DType string
	// Params are the codec's parameters.
	Params map[string]any
	// Blob is the codec's serialized model (may be empty).
	Blob []byte
	// Tool names the program that wrote the model file (set by
	// ReadModelFile and ReadModel; WriteModelFile takes it as an argument).
	Tool string
	// Stats describe the data the model was fitted on; TargetRatio and
	// TargetQuality the target it was fitted for (zero: none). Encode
	// compares them with what it encodes (Result.Warnings).
	Stats         *DataStats
	TargetRatio   float64
	TargetQuality string
}

// codec restores the model's codec.
func (m *Model) codec() (codec.Codec, error) {
	spec, err := codec.Lookup(m.Codec)
	if err != nil {
		return nil, err
	}
	c, err := spec.Load(m.Layout, m.Blob)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrModel, err)
	}
	return c, nil
}

// ModelVersion returns the format version of the model (the learned
// codec's), or 0 for a codec without one or a model that does not load.
func (m *Model) ModelVersion() int {
	c, err := m.codec()
	if err != nil {
		return 0
	}
	if v, ok := c.(codec.Versioned); ok {
		return v.ModelVersion()
	}
	return 0
}

// taskMetric returns the record of the task metric m was fitted in, if
// any (nil m has none).
func (m *Model) taskMetric() (any, bool) {
	if m == nil {
		return nil, false
	}
	tm, ok := m.Params["task_metric"]
	return tm, ok
}

// Fit fits opts.Codec on a spread of src's samples (opts.FitSamples) and
// returns the model.
func Fit(ctx context.Context, src Source, opts Options) (*Model, error) {
	tokens, dim := src.Shape()
	l, err := opts.layout(tokens, dim)
	if err != nil {
		return nil, err
	}
	perChunk := opts.samplesPerChunk(l)
	meta := &Metadata{Format: FormatName, Layout: l, DType: src.DType(), Shape: []int{src.Len(), tokens, dim}}
	opts.Model = nil
	var stats statsAcc
	c, err := opts.codecFor(ctx, src, l, perChunk, meta, &stats)
	if err != nil {
		return nil, err
	}
	spec, err := codec.Lookup(c.Name())
	if err != nil {
		return nil, err
	}
	t := opts.target(spec)
	return &Model{Codec: c.Name(), Layout: l, DType: src.DType(), Params: c.Params(), Blob: c.Model(),
		Stats: stats.stats(), TargetRatio: t.ratio, TargetQuality: t.quality}, nil
}

// WriteModelFile stores m at path as a .ntcm file: a container with the
// model block, a metadata block and no chunks. The file appears only when
// complete, replacing any file at path.
func WriteModelFile(path string, m *Model, tool string) error {
	return writeModelFile(path, m, tool, container.Create)
}

// WriteNewModelFile is WriteModelFile for a path that must not exist: the
// error wraps fs.ErrExist if something is there, or appears there while
// the file is written.
func WriteNewModelFile(path string, m *Model, tool string) error {
	return writeModelFile(path, m, tool, container.CreateNew)
}

func writeModelFile(path string, m *Model, tool string, create func(string) (*container.FileWriter, error)) error {
	f, err := create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	id, mb, err := m.block(tool)
	if err == nil {
		err = f.WriteModel(id, m.Blob)
	}
	if err == nil {
		err = f.Commit(mb)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// WriteModelTo writes m as a .ntcm stream to w (standard output, say), the
// bytes WriteModelFile puts in a file.
func WriteModelTo(w io.Writer, m *Model, tool string) error {
	cw, err := container.NewWriter(w)
	if err != nil {
		return err
	}
	id, mb, err := m.block(tool)
	if err == nil {
		err = cw.WriteModel(id, m.Blob)
	}
	if err == nil {
		err = cw.Close(mb)
	}
	return err
}

// block returns the codec id of m and the metadata of its model file.
func (m *Model) block(tool string) (uint8, []byte, error) {
	spec, err := codec.Lookup(m.Codec)
	if err != nil {
		return 0, nil, err
	}
	meta := &Metadata{Format: ModelFormatName, Tool: tool, Codec: m.Codec, CodecParams: m.Params,
		Layout: m.Layout, DType: m.DType, Shape: []int{0, m.Layout.Tokens, m.Layout.Dim},
		FitStats: m.Stats, TargetRatio: m.TargetRatio, TargetQuality: m.TargetQuality}
	mb, err := meta.marshal()
	return spec.ID, mb, err
}

// ReadModelFile reads a .ntcm file written by WriteModelFile, checking its
// checksums and that the codec accepts the model.
func ReadModelFile(path string) (*Model, error) {
	f, err := container.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	m, err := modelFrom(f.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// ReadModel reads a model file (.ntcm) held in r, of the given size,
// checking its checksums and that the codec accepts the model.
func ReadModel(r io.ReaderAt, size int64) (*Model, error) {
	c, err := container.NewReader(r, size)
	if err != nil {
		return nil, err
	}
	return modelFrom(c)
}

func modelFrom(r *container.Reader) (*Model, error) {
	meta, err := parseMetadata(r.Metadata(), ModelFormatName)
	if err != nil {
		return nil, err
	}
	spec, err := codec.Lookup(meta.Codec)
	if err != nil {
		return nil, err
	}
	blob, err := r.ReadModel(spec.ID)
	if err != nil {
		return nil, err
	}
	m := &Model{Codec: meta.Codec, Layout: meta.Layout, DType: meta.DType, Params: meta.CodecParams, Blob: blob, Tool: meta.Tool,
		Stats: meta.FitStats, TargetRatio: meta.TargetRatio, TargetQuality: meta.TargetQuality}
	if _, err := m.codec(); err != nil {
		return nil, err
	}
	return m, nil
}

// VerifyReport says what VerifyFile checked.
type VerifyReport struct {
	// Model is true for a model file (.ntcm), false for a data file.
	Model bool
	// Samples and Chunks count what was decoded (zero for a model file).
	Samples, Chunks int
	// ModelFile says where the model a data file holds by reference was
	// found; empty when the file stores its model or has none.
	ModelFile string
}

// VerifyFile checks the .ntcb or .ntcm file at path: every checksum, then
// for a data file every chunk decoded, for a model file that its codec
// loads the model. A model the data file holds by reference must be found,
// as Open finds it (the options, then next to the file), and have the
// recorded hash. progress, if set, is called once with the number of
// samples to decode and returns the Progress to report them to.
func VerifyFile(ctx context.Context, path string, progress func(total int) Progress, opts ...ReadOption) (VerifyReport, error) {
	f, err := container.Open(path)
	if err != nil {
		return VerifyReport{}, err
	}
	defer f.Close()
	ro := readOpts(append(opts, WithLocator(DirLocator(filepath.Dir(path)))))
	if ro.name == "" {
		ro.name = path
	}
	rep, err := verify(ctx, f.Reader, ro, progress)
	if err != nil {
		return rep, fmt.Errorf("%s: %w", path, err)
	}
	return rep, nil
}

// Verify is VerifyFile for the file held in r, of the given size; the
// options say where to look for a model it holds by reference.
func Verify(ctx context.Context, r io.ReaderAt, size int64, progress func(total int) Progress, opts ...ReadOption) (VerifyReport, error) {
	c, err := container.NewReader(r, size)
	if err != nil {
		return VerifyReport{}, err
	}
	return verify(ctx, c, readOpts(opts), progress)
}

func verify(ctx context.Context, c *container.Reader, ro readOptions, progress func(total int) Progress) (VerifyReport, error) {
	if _, err := parseMetadata(c.Metadata(), ModelFormatName); err == nil {
		if err := c.Verify(); err != nil {
			return VerifyReport{}, err
		}
		if _, err := modelFrom(c); err != nil {
			return VerifyReport{}, err
		}
		return VerifyReport{Model: true}, nil
	}
	r, err := newReader(c, ro)
	if err != nil {
		return VerifyReport{}, err
	}
	var p Progress
	if progress != nil {
		p = progress(r.Len())
	}
	if err := r.Verify(ctx, p); err != nil {
		return VerifyReport{}, err
	}
	rep := VerifyReport{Samples: r.Len(), Chunks: c.NumChunks()}
	for _, m := range c.Models() {
		if m.External {
			rep.ModelFile = ro.models.where(m.SHA256)
		}
	}
	return rep, nil
}
