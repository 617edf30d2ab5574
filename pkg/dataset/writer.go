package dataset

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/ntc-project/ntc/internal/fsutil"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
	"github.com/ntc-project/ntc/pkg/metrics"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// DefaultShardBytes is the float16 size of the samples of one shard when
// EncodeOptions.ShardSamples is 0: 256 MiB, about 32 MiB of .ntcb at 8x.
const DefaultShardBytes = 256 << 20

// ModelName is the file name of the model a dataset written by Encode
// holds.
const ModelName = "model.ntcm"

// EncodeOptions configure Encode.
type EncodeOptions struct {
	// Options are those of every shard's encode: codec, rate, chunking,
	// metadata, workers, tool. With Options.Model nil, a learned codec is
	// fitted once on a spread of all the samples. Options.Progress hears
	// of every sample written, from one goroutine at a time.
	ntcb.Options
	// ShardSamples is the number of samples per shard (the last may hold
	// fewer); 0 means as many as DefaultShardBytes of float16 hold.
	ShardSamples int
	// Append adds the samples to the dataset already in the directory, as
	// new shards encoded with its model; without it the directory must not
	// hold a dataset yet, unless Replace.
	Append bool
	// Replace writes a new dataset over one already in the directory: the
	// new index replaces the old, and then the old one's files that the
	// new one does not use are removed.
	Replace bool
}

// Result describes a dataset after Encode.
type Result struct {
	// Dir is the dataset's directory.
	Dir string `json:"dir"`
	// Shards and Samples count what this call wrote.
	Shards  int `json:"shards_written"`
	Samples int `json:"samples_written"`
	// Sizes is the whole dataset's accounting, earlier shards included.
	Sizes Sizes `json:"dataset"`
	// Layout is the token layout of every sample.
	Layout codec.Layout `json:"layout"`
	// Codec names the codec.
	Codec string `json:"codec"`
	// Quality compares the samples written with their inputs.
	Quality metrics.Summary `json:"quality"`
}

// Sizes accounts for a dataset's bytes.
type Sizes struct {
	Shards  int   `json:"shards"`
	Samples int64 `json:"samples"`
	// FP16Bytes is the size of the samples as raw float16.
	FP16Bytes int64 `json:"fp16_bytes"`
	// ShardBytes, ModelBytes and IndexBytes are the sizes of the shard
	// files, the model files and index.json with the keys file.
	ShardBytes int64 `json:"shard_bytes"`
	ModelBytes int64 `json:"model_bytes"`
	IndexBytes int64 `json:"index_bytes"`
	// Ratio is FP16Bytes over every file of the dataset: shards, the
	// models (each once) and the index. ShardRatio leaves out the models
	// and the index: what each shard reaches on its own.
	Ratio      float64 `json:"ratio"`
	ShardRatio float64 `json:"shard_ratio"`
}

// SizesOf accounts for the dataset an index describes, whose index.json
// and keys file are indexBytes long together.
func SizesOf(x *Index, indexBytes int64) Sizes {
	s := Sizes{Shards: len(x.Shards), Samples: x.Samples, IndexBytes: indexBytes}
	s.FP16Bytes = 2 * x.Samples * int64(x.Layout.Values())
	for _, sh := range x.Shards {
		s.ShardBytes += sh.Bytes
	}
	for _, m := range x.Models {
		s.ModelBytes += m.Bytes
	}
	if all := s.ShardBytes + s.ModelBytes + s.IndexBytes; all > 0 {
		s.Ratio = float64(s.FP16Bytes) / float64(all)
	}
	if s.ShardBytes > 0 {
		s.ShardRatio = float64(s.FP16Bytes) / float64(s.ShardBytes)
	}
	return s
}

// Encode writes the samples of src as a dataset in dir (created if
// needed): the model once (when the codec has one), the shards, then
// index.json, which appears only after every shard is written. With
// o.Append it adds shards to the dataset in dir. Shards are encoded in
// parallel. On an error the shards already written stay, but the index
// (and so the dataset) is as before; running again replaces them.
func Encode(ctx context.Context, dir string, src ntcb.Source, o EncodeOptions) (*Result, error) {
	if err := os.MkdirAll(dir, 0o777); err != nil {
		return nil, err
	}
	store := Dir(dir)
	prev, err := readLocalIndex(ctx, store)
	var replaced *Index
	switch {
	case err == nil && o.Replace && !o.Append:
		prev, replaced = nil, prev
	case err == nil && !o.Append:
		return nil, fmt.Errorf("%s: %w: the directory holds a dataset already (add to it with --append, or replace it with --force)", store.Location(IndexName), fs.ErrExist)
	case errors.Is(err, fs.ErrNotExist):
		prev = nil
	case err != nil:
		return nil, err
	}
	tokens, dim := src.Shape()
	// Every key must be new to the dataset.
	seen := map[string]int{}
	if prev != nil {
		for si, s := range prev.Shards {
			for _, k := range s.Keys {
				seen[k] = si
			}
		}
	}
	for i := range src.Len() {
		k := src.Key(i)
		if si, ok := seen[k]; ok {
			if si < 0 {
				return nil, fmt.Errorf("%w: two inputs give the key %q", ErrInput, k)
			}
			return nil, fmt.Errorf("%w: key %q is in the dataset already (shard %s)", ErrInput, k, prev.Shards[si].Name)
		}
		seen[k] = -1
	}
	opts := o.Options
	opts.NoReplace = false // shard files of an interrupted run are no one's
	if prev != nil {
		if prev.DType != src.DType() {
			return nil, fmt.Errorf("%w: the inputs are %s, the dataset %s", ErrInput, src.DType(), prev.DType)
		}
		if prev.Layout.Tokens != tokens || prev.Layout.Dim != dim {
			return nil, fmt.Errorf("%w: the inputs are %dx%d, the dataset %dx%d", ErrInput, tokens, dim, prev.Layout.Tokens, prev.Layout.Dim)
		}
		if opts.Model, err = appendModel(ctx, store, prev, opts); err != nil {
			return nil, err
		}
		if opts.Model == nil {
			opts.Codec = prev.Codec
		}
		opts.Prefix, opts.GridH, opts.GridW = prev.Layout.Prefix, prev.Layout.GridH, prev.Layout.GridW
	}
	perShard := o.ShardSamples
	if perShard <= 0 {
		perShard = max(1, DefaultShardBytes/(2*tokens*dim))
	}
	// Shards hold the model by reference; the dataset holds it once.
	opts.ModelRef, opts.ModelFile = true, ModelName
	if opts.Model == nil && prev == nil {
		if spec, err := codec.Lookup(codecName(opts.Codec)); err == nil && spec.Learned {
			// Rate control aims the whole dataset at the ratio: the shards'
			// framing, the model once (with its file's) and the index.
			fit := opts
			fit.Progress, fit.ShardSamples, fit.SharedModel = nil, perShard, false
			fit.ExtraBytes = estimateIndexBytes(src, perShard) + modelFileFraming(dim)
			if opts.Model, err = ntcb.Fit(ctx, src, fit); err != nil {
				return nil, err
			}
		}
	}
	var models []Model
	if prev != nil {
		models = prev.Models
	} else if opts.Model != nil {
		m, err := writeModel(store, opts.Model, opts.Tool)
		if err != nil {
			return nil, err
		}
		models = []Model{m}
	}
	first := 0
	if prev != nil {
		first = len(prev.Shards)
	}
	shards, res, err := encodeShards(ctx, store, src, first, perShard, opts)
	if err != nil {
		return nil, err
	}
	x := &Index{Format: FormatName, Version: Version, Tool: opts.Tool, Samples: int64(src.Len()), Models: models, Shards: shards, Meta: opts.Meta}
	if len(res) > 0 {
		x.Codec, x.DType, x.Layout = res[0].Codec, src.DType(), res[0].Layout
	}
	if prev != nil {
		x.Tool, x.Codec, x.DType, x.Layout, x.Meta = prev.Tool, prev.Codec, prev.DType, prev.Layout, prev.Meta
		x.Samples += prev.Samples
		x.Shards = append(append([]Shard(nil), prev.Shards...), shards...)
	}
	indexBytes, err := WriteIndex(dir, x)
	if err != nil {
		return nil, err
	}
	if replaced != nil {
		removeUnused(store, replaced, x)
	}
	var acc metrics.Accumulator
	for _, r := range res {
		acc.Merge(r.acc)
	}
	return &Result{Dir: dir, Shards: len(shards), Samples: src.Len(), Sizes: SizesOf(x, indexBytes),
		Layout: x.Layout, Codec: x.Codec, Quality: acc.Summary()}, nil
}

func codecName(name string) string {
	if name == "" {
		return ntcb.DefaultCodec
	}
	return name
}

// removeUnused removes the files of the replaced index old that the new
// index x does not name.
func removeUnused(store Dir, old, x *Index) {
	keep := map[string]bool{}
	for _, n := range x.names() {
		keep[n] = true
	}
	for _, n := range old.names() {
		if !keep[n] {
			os.Remove(store.Location(n))
		}
	}
}

// modelFileFraming estimates what a model file for samples of dim
// channels holds besides the model: its container framing and metadata,
// which records the fit data's per-channel mean and standard deviation
// (about 12 bytes of JSON a number).
func modelFileFraming(dim int) int64 {
	return container.Framing{Models: 1, MetadataLen: 700 + 2*12*dim}.Overhead()
}

// estimateIndexBytes estimates the size of the index of src in shards of
// perShard samples, for rate control.
func estimateIndexBytes(src ntcb.Source, perShard int) int64 {
	shards := int64((src.Len() + perShard - 1) / perShard)
	n := 600 + 250 + shards*int64(len(`{"file":"shard-00000.ntcb","bytes":,"sha256":"","samples":,"keys":[]},`)+64+12+4)
	for i := range src.Len() {
		n += int64(len(src.Key(i))) + 3
	}
	return n
}

// readLocalIndex reads and parses the index of the dataset in store, with
// its keys file.
func readLocalIndex(ctx context.Context, store Store) (*Index, error) {
	r, err := OpenStore(ctx, store, IndexName, nil)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.idx, nil
}

// appendModel returns the model new shards of the dataset x are encoded
// with: the dataset's own, which a model given in opts must equal.
func appendModel(ctx context.Context, store Store, x *Index, opts ntcb.Options) (*ntcb.Model, error) {
	if len(x.Models) == 0 {
		if opts.Model != nil {
			return nil, fmt.Errorf("%w: the dataset's codec %s has no model; encode without one", ErrInput, x.Codec)
		}
		if opts.Codec != "" && opts.Codec != x.Codec {
			return nil, fmt.Errorf("%w: the dataset's codec is %s, not %s", ErrInput, x.Codec, opts.Codec)
		}
		return nil, nil
	}
	r := &Reader{store: store, idx: x}
	m, err := r.loadModel(ctx, x.Models[len(x.Models)-1])
	if err != nil {
		return nil, err
	}
	if opts.Model != nil && sha256.Sum256(opts.Model.Blob) != sha256.Sum256(m.Blob) {
		return nil, fmt.Errorf("%w: the model given is not the dataset's (%s, model sha256 %s)", ErrInput,
			x.Models[len(x.Models)-1].Name, x.Models[len(x.Models)-1].ModelSHA256)
	}
	return m, nil
}

// writeModel stores the model in the dataset's directory.
func writeModel(store Dir, m *ntcb.Model, tool string) (Model, error) {
	path := store.Location(ModelName)
	if err := ntcb.WriteModelFile(path, m, tool); err != nil {
		return Model{}, err
	}
	f, err := fileInfo(path, ModelName)
	if err != nil {
		return Model{}, err
	}
	return Model{File: f, Codec: m.Codec, ModelSHA256: FormatHash(sha256.Sum256(m.Blob))}, nil
}

// fileInfo returns the size and SHA-256 of a file written.
func fileInfo(path, name string) (File, error) {
	f, size, err := openLocal(path)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	h, err := hashReaderAt(context.Background(), f, size)
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", path, err)
	}
	return File{Name: name, Bytes: size, SHA256: FormatHash(h)}, nil
}

func openLocal(path string) (*os.File, int64, error) {
	b, err := Dir(filepath.Dir(path)).Open(context.Background(), filepath.Base(path))
	if err != nil {
		return nil, 0, err
	}
	lb := b.(*localBlob)
	return lb.File, lb.size, nil
}

// shardResult is what encoding one shard gives.
type shardResult struct {
	*ntcb.Result
	Codec string
	acc   *metrics.Accumulator
}

// encodeShards encodes src in shards of perShard samples, named from shard
// number first on, several at once, and returns their index entries in
// order.
func encodeShards(ctx context.Context, store Dir, src ntcb.Source, first, perShard int, opts ntcb.Options) ([]Shard, []shardResult, error) {
	total := src.Len()
	n := (total + perShard - 1) / perShard
	l := opts.Model
	var values int
	if l != nil {
		values = l.Layout.Values()
	} else {
		t, d := src.Shape()
		values = t * d
	}
	chunk := ntcb.SamplesPerChunk(opts.ChunkBytes, codec.Layout{Tokens: values, Dim: 1})
	chunksPerShard := (perShard + chunk - 1) / chunk
	cpus := runtime.GOMAXPROCS(0)
	if opts.Workers > 0 {
		cpus = opts.Workers
	}
	par := min(n, max(1, cpus/chunksPerShard))
	opts.Workers = max(1, cpus/par)
	progress := opts.Progress
	var progMu, srcMu sync.Mutex
	if progress != nil {
		opts.Progress = lockedProgress{&progMu, progress}
	}
	shards := make([]Shard, n)
	results := make([]shardResult, n)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	var errMu sync.Mutex
	var firstErr error
	sem := make(chan struct{}, par)
	for s := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var sh Shard
			var res shardResult
			err := ntcb.Guard(func() (err error) {
				sh, res, err = encodeShard(ctx, store, src, &srcMu, first+s, s*perShard, min(perShard, total-s*perShard), opts)
				return err
			})
			if err != nil {
				errMu.Lock()
				if firstErr == nil {
					firstErr = err
				}
				errMu.Unlock()
				cancel()
				return
			}
			shards[s], results[s] = sh, res
		}()
	}
	wg.Wait()
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return nil, nil, firstErr
	}
	return shards, results, nil
}

// encodeShard encodes samples [from, from+n) of src as shard number num.
func encodeShard(ctx context.Context, store Dir, src ntcb.Source, mu *sync.Mutex, num, from, n int, opts ntcb.Options) (Shard, shardResult, error) {
	name := ShardName(num)
	sub, err := sliceOf(src, from, n, mu)
	if err != nil {
		return Shard{}, shardResult{}, err
	}
	defer sub.Close()
	path := store.Location(name)
	res, err := ntcb.EncodeFile(ctx, path, sub, opts)
	if err != nil {
		return Shard{}, shardResult{}, err
	}
	f, err := fileInfo(path, name)
	if err != nil {
		return Shard{}, shardResult{}, err
	}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = sub.Key(i)
	}
	c := opts.Codec
	if opts.Model != nil {
		c = opts.Model.Codec
	}
	return Shard{File: f, Samples: n, Keys: keys}, shardResult{Result: res, Codec: codecName(c), acc: res.Accumulator()}, nil
}

type lockedProgress struct {
	mu *sync.Mutex
	p  ntcb.Progress
}

func (l lockedProgress) Add(n int) {
	l.mu.Lock()
	l.p.Add(n)
	l.mu.Unlock()
}

// WriteIndex writes x as dir's index.json (and, when the keys are more
// than InlineKeyBytes, the keys file first), each atomically: the old
// index stays until the new one is complete. It returns the bytes
// written.
func WriteIndex(dir string, x *Index) (int64, error) {
	keyBytes := 0
	for _, s := range x.Shards {
		for _, k := range s.Keys {
			keyBytes += len(k) + 3
		}
	}
	out := *x
	var written int64
	if keyBytes > inlineKeyBytes {
		kb, err := x.MarshalKeys()
		if err != nil {
			return 0, err
		}
		if err := writeFileAtomic(dir, KeysName, kb); err != nil {
			return 0, err
		}
		out.Keys = &File{Name: KeysName, Bytes: int64(len(kb)), SHA256: FormatHash(sha256.Sum256(kb))}
		out.Shards = make([]Shard, len(x.Shards))
		for i, s := range x.Shards {
			s.Keys = nil
			out.Shards[i] = s
		}
		written += int64(len(kb))
	} else {
		out.Keys = nil
	}
	b, err := out.Marshal()
	if err != nil {
		return 0, err
	}
	if err := writeFileAtomic(dir, IndexName, b); err != nil {
		return 0, err
	}
	return written + int64(len(b)), nil
}

// writeFileAtomic writes data to dir/name atomically (fsutil.Create),
// replacing what is there.
func writeFileAtomic(dir, name string, data []byte) error {
	f, err := fsutil.Create(filepath.Join(dir, name), fsutil.CreateOptions{Replace: true})
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, name), err)
	}
	return f.Commit()
}

// sliceOf returns a Source over samples [from, from+n) of src, with their
// keys. A source that can be cloned (ntcb.Files) gets a clone of its own,
// so that slices are read concurrently; any other is read under mu.
func sliceOf(src ntcb.Source, from, n int, mu *sync.Mutex) (ntcb.Source, error) {
	if from < 0 || n < 1 || from+n > src.Len() {
		return nil, fmt.Errorf("samples %d to %d of %d", from, from+n, src.Len())
	}
	if c, ok := src.(interface{ Clone() *ntcb.Files }); ok {
		return &slice{src: c.Clone(), from: from, n: n, own: true}, nil
	}
	return &slice{src: src, from: from, n: n, mu: mu}, nil
}

type slice struct {
	src     ntcb.Source
	from, n int
	own     bool
	mu      *sync.Mutex
}

func (s *slice) Len() int          { return s.n }
func (s *slice) Shape() (int, int) { return s.src.Shape() }
func (s *slice) DType() string     { return s.src.DType() }
func (s *slice) Inputs() int       { return s.src.Inputs() }
func (s *slice) Key(i int) string  { return s.src.Key(s.from + i) }
func (s *slice) ReadSample(i int, dst []float32) error {
	if i < 0 || i >= s.n {
		return fmt.Errorf("sample %d out of range [0, %d)", i, s.n)
	}
	if s.mu != nil {
		s.mu.Lock()
		defer s.mu.Unlock()
	}
	return s.src.ReadSample(s.from+i, dst)
}
func (s *slice) Close() error {
	if s.own {
		return s.src.Close()
	}
	return nil
}

// inlineKeyBytes is InlineKeyBytes, lowered by tests.
var inlineKeyBytes = InlineKeyBytes
