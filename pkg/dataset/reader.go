package dataset

import (
	"bytes"
	"container/list"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
	"github.com/ntc-project/ntc/pkg/remote"
)

// DefaultMaxOpenShards is how many shards a Reader keeps open at once
// unless Options say otherwise.
const DefaultMaxOpenShards = 64

// Options configure Open. The zero value (or nil) means the defaults.
type Options struct {
	// Remote configures reads over HTTP(S).
	Remote *remote.Options
	// MaxOpenShards bounds the shards held open (files, parsed indices,
	// decoded chunks); 0 means DefaultMaxOpenShards. Shards in use are
	// never closed, so more may be open for a moment.
	MaxOpenShards int
	// Models are where to look first for the models that files hold by
	// reference (model files the user named), shared by every shard; nil
	// means a new, empty set. The dataset's own models come next.
	Models *ntcb.Models
}

func (o *Options) remote() *remote.Options {
	if o == nil {
		return nil
	}
	return o.Remote
}

func (o *Options) models() *ntcb.Models {
	if o == nil || o.Models == nil {
		return ntcb.NewModels()
	}
	return o.Models
}

// Reader reads the samples of a dataset: one index over many .ntcb shards,
// with global sample indices and keys. Opening reads index.json (and the
// keys file, if any) and no shard; a shard is opened, and checked against
// the index (size, sample count, keys, layout), when one of its samples is
// first read. A Reader is safe for concurrent use.
type Reader struct {
	ctx        context.Context
	store      Store
	name       string // the index file's name in store
	indexBytes int64  // of index.json and the keys file
	idx        *Index
	starts     []int64
	keys       map[string]int
	maxOpen    int
	models     *ntcb.Models

	shards []*shardSlot
	mu     sync.Mutex
	nopen  int        // shards open
	idle   *list.List // of shard numbers open and unused, least recently used last
}

type shardSlot struct {
	opening sync.Mutex // serializes opening the shard
	// Guarded by Reader.mu:
	r    *ntcb.Reader
	blob Blob
	refs int
	elem *list.Element // in Reader.idle while open and unused
}

// Open opens the dataset at loc: a directory, its index.json, or an http(s)
// URL of either. ctx bounds every remote request the Reader makes.
func Open(ctx context.Context, loc string, o *Options) (*Reader, error) {
	kind, store, name, err := Resolve(loc, o.remote())
	if err != nil {
		return nil, err
	}
	if kind != KindDataset {
		return nil, fmt.Errorf("%s: a single file, not a dataset (a directory with %s)", loc, IndexName)
	}
	return OpenStore(ctx, store, name, o)
}

// OpenStore opens the dataset whose index is the named file of store.
func OpenStore(ctx context.Context, store Store, name string, o *Options) (*Reader, error) {
	b, err := store.ReadFile(ctx, name, MaxIndexBytes)
	if err != nil {
		return nil, err
	}
	idx, err := ParseIndex(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", store.Location(name), err)
	}
	if idx.Keys != nil {
		kb, err := store.ReadFile(ctx, idx.Keys.Name, idx.Keys.Bytes)
		if err != nil {
			return nil, err
		}
		if err := idx.ReadKeys(bytes.NewReader(kb)); err != nil {
			return nil, fmt.Errorf("%s: %w", store.Location(idx.Keys.Name), err)
		}
	}
	r := &Reader{ctx: ctx, store: store, name: name, indexBytes: int64(len(b)), idx: idx, starts: idx.Starts(),
		keys: make(map[string]int, idx.Samples), maxOpen: DefaultMaxOpenShards, models: o.models(),
		shards: make([]*shardSlot, len(idx.Shards)), idle: list.New()}
	if idx.Keys != nil {
		r.indexBytes += idx.Keys.Bytes
	}
	if o != nil && o.MaxOpenShards > 0 {
		r.maxOpen = o.MaxOpenShards
	}
	for si, s := range idx.Shards {
		for j, k := range s.Keys {
			r.keys[k] = int(r.starts[si]) + j
		}
	}
	for i := range r.shards {
		r.shards[i] = &shardSlot{}
	}
	return r, nil
}

// Index returns the dataset's index. It must not be modified.
func (r *Reader) Index() *Index { return r.idx }

// Store returns where the dataset's files are.
func (r *Reader) Store() Store { return r.store }

// Location returns the path or URL of the dataset's index.
func (r *Reader) Location() string { return r.store.Location(r.name) }

// Len returns the number of samples.
func (r *Reader) Len() int { return int(r.idx.Samples) }

// Layout returns the token layout of every sample.
func (r *Reader) Layout() codec.Layout { return r.idx.Layout }

// Key returns the key of sample i.
func (r *Reader) Key(i int) string {
	si, j := r.Locate(i)
	return r.idx.Shards[si].Keys[j]
}

// Lookup returns the index of the sample with the key.
func (r *Reader) Lookup(key string) (int, error) {
	i, ok := r.keys[key]
	if !ok {
		return 0, fmt.Errorf("%s: key %q: %w", r.Location(), key, ErrNotFound)
	}
	return i, nil
}

// Locate returns the shard that holds sample i and the sample's index in
// it. i must be in [0, Len()).
func (r *Reader) Locate(i int) (shard, j int) {
	si := sort.Search(len(r.idx.Shards), func(s int) bool { return r.starts[s+1] > int64(i) })
	return si, i - int(r.starts[si])
}

// First returns the index of shard s's first sample.
func (r *Reader) First(s int) int { return int(r.starts[s]) }

// Shard opens shard s (or finds it open) and returns its reader, checked
// against the index. Call the returned release when done with it; the
// shard may be closed after that to keep within MaxOpenShards. A shard
// that fails to open is tried again on the next call.
func (r *Reader) Shard(s int) (*ntcb.Reader, func(), error) {
	if s < 0 || s >= len(r.shards) {
		return nil, nil, fmt.Errorf("shard %d out of range [0, %d)", s, len(r.shards))
	}
	slot := r.shards[s]
	release := func() { r.release(s) }
	r.mu.Lock()
	slot.refs++
	if slot.elem != nil {
		r.idle.Remove(slot.elem)
		slot.elem = nil
	}
	nr := slot.r
	r.mu.Unlock()
	if nr != nil {
		return nr, release, nil
	}
	slot.opening.Lock()
	defer slot.opening.Unlock()
	r.mu.Lock()
	nr = slot.r
	r.mu.Unlock()
	if nr == nil {
		var blob Blob
		var err error
		if nr, blob, err = r.openShard(s); err != nil {
			release()
			return nil, nil, err
		}
		r.mu.Lock()
		slot.r, slot.blob = nr, blob
		r.nopen++
		r.mu.Unlock()
	}
	return nr, release, nil
}

// release gives back a reference to shard s and closes the least recently
// used idle shards beyond MaxOpenShards.
func (r *Reader) release(s int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	slot := r.shards[s]
	slot.refs--
	if slot.refs == 0 && slot.r != nil {
		slot.elem = r.idle.PushFront(s)
	}
	for r.nopen > r.maxOpen && r.idle.Len() > 0 {
		e := r.idle.Back()
		r.idle.Remove(e)
		old := r.shards[e.Value.(int)]
		old.elem = nil
		old.blob.Close()
		old.r, old.blob = nil, nil
		r.nopen--
	}
}

// openShard opens shard s and checks it against the index.
func (r *Reader) openShard(s int) (*ntcb.Reader, Blob, error) {
	sh := r.idx.Shards[s]
	loc := r.store.Location(sh.Name)
	blob, err := r.store.Open(r.ctx, sh.Name)
	if err != nil {
		return nil, nil, err
	}
	fail := func(err error) (*ntcb.Reader, Blob, error) {
		blob.Close()
		return nil, nil, fmt.Errorf("%s: %w", loc, err)
	}
	if blob.Size() != sh.Bytes {
		return fail(fmt.Errorf("%w: %d bytes, the index says %d", ErrMismatch, blob.Size(), sh.Bytes))
	}
	nr, err := ntcb.NewReader(blob, blob.Size(), ntcb.WithModels(r.models), ntcb.WithLocator(r.locateModel), ntcb.WithName(loc))
	if err != nil {
		return fail(err)
	}
	if err := r.checkShard(s, nr); err != nil {
		return fail(err)
	}
	return nr, blob, nil
}

// checkShard compares an open shard with its index entry.
func (r *Reader) checkShard(s int, nr *ntcb.Reader) error {
	sh := r.idx.Shards[s]
	meta := nr.Meta()
	switch {
	case nr.Len() != sh.Samples:
		return fmt.Errorf("%w: %d samples, the index says %d", ErrMismatch, nr.Len(), sh.Samples)
	case nr.Layout() != r.idx.Layout:
		return fmt.Errorf("%w: layout %+v, the dataset's is %+v", ErrMismatch, nr.Layout(), r.idx.Layout)
	case meta.DType != r.idx.DType:
		return fmt.Errorf("%w: dtype %s, the dataset's is %s", ErrMismatch, meta.DType, r.idx.DType)
	}
	for j, k := range sh.Keys {
		if got := nr.Key(j); got != k {
			return fmt.Errorf("%w: sample %d has key %q, the index says %q", ErrMismatch, j, got, k)
		}
	}
	return nil
}

// ReadSample decodes sample i into dst (grown as needed to tokens*dim
// values) and returns it.
func (r *Reader) ReadSample(i int, dst []float32) ([]float32, error) {
	if i < 0 || i >= r.Len() {
		return nil, fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
	}
	si, j := r.Locate(i)
	sr, release, err := r.Shard(si)
	if err != nil {
		return nil, err
	}
	defer release()
	out, err := sr.ReadSample(j, dst)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", r.store.Location(r.idx.Shards[si].Name), err)
	}
	return out, nil
}

// ReadSamples decodes the listed samples (any order, repeats allowed) into
// dst, grown as needed to len(idx) samples, and returns it.
func (r *Reader) ReadSamples(idx []int, dst []float32) ([]float32, error) {
	n := r.idx.Layout.Values()
	if cap(dst) < len(idx)*n {
		dst = make([]float32, len(idx)*n)
	}
	dst = dst[:len(idx)*n]
	for k, i := range idx {
		if _, err := r.ReadSample(i, dst[k*n:(k+1)*n]); err != nil {
			return nil, err
		}
	}
	return dst, nil
}

// Runs splits sample indices into runs of consecutive entries that lie in
// the same shard, in order: for each run, the shard and the samples'
// indices in it.
func (r *Reader) Runs(idx []int) ([]Run, error) {
	var runs []Run
	for _, i := range idx {
		if i < 0 || i >= r.Len() {
			return nil, fmt.Errorf("sample %d out of range [0, %d)", i, r.Len())
		}
		si, j := r.Locate(i)
		if n := len(runs); n > 0 && runs[n-1].Shard == si {
			runs[n-1].Samples = append(runs[n-1].Samples, j)
		} else {
			runs = append(runs, Run{Shard: si, Samples: []int{j}})
		}
	}
	return runs, nil
}

// Run is a run of samples of one shard, by their index in the shard.
type Run struct {
	Shard   int
	Samples []int
}

// Close closes every open shard. The Reader must not be used afterwards.
func (r *Reader) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first error
	for _, s := range r.shards {
		if s.blob != nil {
			if err := s.blob.Close(); err != nil && first == nil {
				first = err
			}
			s.r, s.blob, s.elem = nil, nil, nil
		}
	}
	r.nopen = 0
	r.idle.Init()
	return first
}

// Progress receives how many samples are done (see ntcb.Progress).
type Progress = ntcb.Progress

// VerifyReport says what Verify checked.
type VerifyReport struct {
	Shards, Samples, Models int
	// Bytes counts the bytes of every file checked.
	Bytes int64
}

// Verify checks the whole dataset: every model file (size, SHA-256, the
// model blob's hash and that its codec loads it), then every shard (size
// and SHA-256 against the index, the shard against its index entry, every
// checksum and every chunk decoded), reporting samples to p. It returns
// the first problem found, naming the file.
func (r *Reader) Verify(ctx context.Context, p Progress) (VerifyReport, error) {
	var rep VerifyReport
	for _, m := range r.idx.Models {
		if err := r.verifyFile(ctx, m.File); err != nil {
			return rep, err
		}
		if _, err := r.loadModel(ctx, m); err != nil {
			return rep, err
		}
		rep.Models++
		rep.Bytes += m.Bytes
	}
	for s, sh := range r.idx.Shards {
		if err := r.verifyFile(ctx, sh.File); err != nil {
			return rep, err
		}
		sr, release, err := r.Shard(s)
		if err != nil {
			return rep, err
		}
		err = sr.Verify(ctx, p)
		release()
		if err != nil {
			return rep, fmt.Errorf("%s: %w", r.store.Location(sh.Name), err)
		}
		rep.Shards++
		rep.Samples += sh.Samples
		rep.Bytes += sh.Bytes
	}
	return rep, nil
}

// verifyFile reads a whole file and checks its size and SHA-256.
func (r *Reader) verifyFile(ctx context.Context, f File) error {
	loc := r.store.Location(f.Name)
	blob, err := r.store.Open(ctx, f.Name)
	if err != nil {
		return err
	}
	defer blob.Close()
	if blob.Size() != f.Bytes {
		return fmt.Errorf("%s: %w: %d bytes, the index says %d", loc, ErrMismatch, blob.Size(), f.Bytes)
	}
	got, err := hashReaderAt(ctx, blob, blob.Size())
	if err != nil {
		return fmt.Errorf("%s: %w", loc, err)
	}
	if FormatHash(got) != f.SHA256 {
		return fmt.Errorf("%s: %w: sha256 %s, the index says %s", loc, ErrMismatch, FormatHash(got), f.SHA256)
	}
	return nil
}

// hashReaderAt returns the SHA-256 of the first size bytes of r.
func hashReaderAt(ctx context.Context, r io.ReaderAt, size int64) (Hash, error) {
	h := sha256.New()
	buf := make([]byte, 1<<20)
	for off := int64(0); off < size; {
		if err := ctx.Err(); err != nil {
			return Hash{}, err
		}
		n := int(min(int64(len(buf)), size-off))
		m, err := r.ReadAt(buf[:n], off)
		if m < n {
			if err == nil || errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return Hash{}, err
		}
		h.Write(buf[:n])
		off += int64(n)
	}
	var sum Hash
	h.Sum(sum[:0])
	return sum, nil
}

// locateModel is the ntcb.ModelLocator of the dataset's models: the model
// file the index lists with the hash.
func (r *Reader) locateModel(_ uint8, sha [32]byte, _ string) ([]byte, string, error) {
	m, ok := r.idx.Model(sha)
	if !ok {
		return nil, fmt.Sprintf("the models of %s", r.Location()), nil
	}
	model, err := r.loadModel(r.ctx, m)
	if err != nil {
		return nil, "", err
	}
	return model.Blob, r.store.Location(m.Name), nil
}

// loadModel reads a model file of the dataset and checks that it holds the
// model blob the index names, for the codec it names.
func (r *Reader) loadModel(ctx context.Context, m Model) (*ntcb.Model, error) {
	loc := r.store.Location(m.Name)
	blob, err := r.store.Open(ctx, m.Name)
	if err != nil {
		return nil, err
	}
	defer blob.Close()
	model, err := ntcb.ReadModel(blob, blob.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", loc, err)
	}
	if model.Codec != m.Codec {
		return nil, fmt.Errorf("%s: %w: a model for codec %s, the index says %s", loc, ErrMismatch, model.Codec, m.Codec)
	}
	if got := FormatHash(sha256.Sum256(model.Blob)); got != m.ModelSHA256 {
		return nil, fmt.Errorf("%s: %w: model sha256 %s, the index says %s", loc, ErrMismatch, got, m.ModelSHA256)
	}
	return model, nil
}

// Info summarises a dataset for display, from its index alone.
type Info struct {
	Location string            `json:"location"`
	Version  int               `json:"format_version"`
	Tool     string            `json:"tool,omitempty"`
	Codec    string            `json:"codec"`
	DType    string            `json:"dtype"`
	Layout   codec.Layout      `json:"layout"`
	Sizes    Sizes             `json:"sizes"`
	Models   []Model           `json:"models"`
	Shards   []ShardInfo       `json:"shards"`
	Meta     map[string]string `json:"meta,omitempty"`
}

// ShardInfo describes one shard.
type ShardInfo struct {
	File        string `json:"file"`
	Bytes       int64  `json:"bytes"`
	FirstSample int64  `json:"first_sample"`
	Samples     int    `json:"samples"`
	// Ratio is the shard's float16 bytes over its file's.
	Ratio float64 `json:"ratio"`
}

// Info describes the dataset; it reads nothing.
func (r *Reader) Info() Info {
	x := r.idx
	info := Info{Location: r.Location(), Version: x.Version, Tool: x.Tool, Codec: x.Codec, DType: x.DType,
		Layout: x.Layout, Sizes: SizesOf(x, r.indexBytes), Models: x.Models, Meta: x.Meta}
	for i, s := range x.Shards {
		info.Shards = append(info.Shards, ShardInfo{File: s.Name, Bytes: s.Bytes, FirstSample: r.starts[i], Samples: s.Samples,
			Ratio: float64(2*int64(s.Samples)*int64(x.Layout.Values())) / float64(max(1, s.Bytes))})
	}
	return info
}
