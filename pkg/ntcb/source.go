package ntcb

import (
	"fmt"
	"strconv"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// Source delivers the samples of a dataset by index. Encode reads them in
// order, and reads a spread-out subset first when it fits a model.
type Source interface {
	// Len returns the number of samples.
	Len() int
	// Shape returns the tokens and dims of every sample.
	Shape() (tokens, dim int)
	// DType names the dtype of the stored values ("float16", ...).
	DType() string
	// Inputs returns the number of input files (0 for memory).
	Inputs() int
	// Key returns sample i's key.
	Key(i int) string
	// ReadSample reads sample i into dst (tokens*dim values).
	ReadSample(i int, dst []float32) error
	// Close releases open files.
	Close() error
}

type fileInput struct {
	spec    string
	key     string
	first   int // index of its first sample in the dataset
	n       int
	batched bool
}

// Files is a Source over token files (.npy, .npz, .safetensors), opened one
// at a time so that only one is open at once.
type Files struct {
	inputs      []fileInput
	total       int
	tokens, dim int
	dtype       tensorio.DType
	cur         tensorio.Source
	curIdx      int
}

// OpenFiles scans the inputs (file specs as tensorio.Open takes them) and
// checks that every sample has the same shape and dtype. Each file is opened
// to read its header, then closed. Keys are relative to the inputs' common
// directory (see OpenFilesWith).
func OpenFiles(specs []string) (*Files, error) { return OpenFilesWith(specs, FilesOptions{}) }

// OpenFilesWith is OpenFiles with options. Each sample's key is its file's
// path relative to the key root, without the extension, plus "#i" for the
// i-th sample of a batch file: the same keys whatever the spelling of the
// paths. Inputs that would give the same key are an error naming both.
func OpenFilesWith(specs []string, opts FilesOptions) (*Files, error) {
	if len(specs) == 0 {
		return nil, fmt.Errorf("%w: no input files", ErrInput)
	}
	keys, err := inputKeys(specs, opts.KeyRoot)
	if err != nil {
		return nil, err
	}
	f := &Files{curIdx: -1}
	for i, spec := range specs {
		src, err := tensorio.Open(spec)
		if err != nil {
			return nil, err
		}
		t, d := src.SampleShape()
		in := fileInput{spec: spec, key: keys[i], first: f.total, n: src.NumSamples(), batched: src.Batched()}
		dt := src.DType()
		src.Close()
		if i == 0 {
			f.tokens, f.dim, f.dtype = t, d, dt
		} else if t != f.tokens || d != f.dim {
			return nil, fmt.Errorf("%w: %s: samples are %dx%d, but %s has %dx%d", ErrInput, spec, t, d, specs[0], f.tokens, f.dim)
		} else if dt != f.dtype {
			return nil, fmt.Errorf("%w: %s: dtype %s, but %s has %s", ErrInput, spec, dt, specs[0], f.dtype)
		}
		f.inputs = append(f.inputs, in)
		f.total += in.n
	}
	if f.total == 0 {
		return nil, fmt.Errorf("%w: the inputs hold no samples", ErrInput)
	}
	if err := checkBatchKeys(f); err != nil {
		return nil, err
	}
	return f, nil
}

// Len implements Source.
func (f *Files) Len() int { return f.total }

// Shape implements Source.
func (f *Files) Shape() (int, int) { return f.tokens, f.dim }

// DType implements Source.
func (f *Files) DType() string { return f.dtype.String() }

// Inputs implements Source.
func (f *Files) Inputs() int { return len(f.inputs) }

// locate finds the input file holding sample i.
func (f *Files) locate(i int) (int, int) {
	lo, hi := 0, len(f.inputs)-1
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if f.inputs[mid].first <= i {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo, i - f.inputs[lo].first
}

// Key implements Source: the file's key base, plus "#index" for samples of
// a batched ([N, T, D]) file.
func (f *Files) Key(i int) string {
	fi, j := f.locate(i)
	in := f.inputs[fi]
	if !in.batched {
		return in.key
	}
	return in.key + "#" + strconv.Itoa(j)
}

// NewFilesFrom returns a Files over one tensor already open (standard
// input spooled to a temporary file, say), whose samples get the key base
// key: key, or key#i in a batch. The Files owns src: its Close closes
// src, after which it cannot be read again.
func NewFilesFrom(src tensorio.Source, key string) (*Files, error) {
	t, d := src.SampleShape()
	f := &Files{
		inputs: []fileInput{{spec: src.Name(), key: key, n: src.NumSamples(), batched: src.Batched()}},
		total:  src.NumSamples(), tokens: t, dim: d, dtype: src.DType(), cur: src, curIdx: 0,
	}
	if f.total == 0 {
		src.Close()
		return nil, fmt.Errorf("%w: %s holds no samples", ErrInput, src.Name())
	}
	return f, nil
}

// Specs returns the input specs, in dataset order.
func (f *Files) Specs() []string {
	specs := make([]string, len(f.inputs))
	for i, in := range f.inputs {
		specs[i] = in.spec
	}
	return specs
}

// Origin implements Origin: the spec of the input that holds sample i.
func (f *Files) Origin(i int) string {
	fi, _ := f.locate(i)
	return f.inputs[fi].spec
}

// ReadSample implements Source.
func (f *Files) ReadSample(i int, dst []float32) error {
	if i < 0 || i >= f.total {
		return fmt.Errorf("sample %d out of range [0, %d)", i, f.total)
	}
	fi, j := f.locate(i)
	if fi != f.curIdx {
		if f.cur != nil {
			f.cur.Close()
			f.cur = nil
		}
		src, err := tensorio.Open(f.inputs[fi].spec)
		if err != nil {
			return err
		}
		if t, d := src.SampleShape(); t != f.tokens || d != f.dim || src.NumSamples() != f.inputs[fi].n {
			src.Close()
			return fmt.Errorf("%w: %s changed while encoding", ErrInput, f.inputs[fi].spec)
		}
		f.cur, f.curIdx = src, fi
	}
	return f.cur.ReadSample(j, dst)
}

// Clone returns a Files over the same inputs with no file open, to read
// them from another goroutine.
func (f *Files) Clone() *Files {
	c := *f
	c.cur, c.curIdx = nil, -1
	return &c
}

// Close implements Source.
func (f *Files) Close() error {
	if f.cur == nil {
		return nil
	}
	err := f.cur.Close()
	f.cur, f.curIdx = nil, -1
	return err
}

// Memory is a Source over samples held in memory, for tests, benchmarks
// and callers that produce tokens themselves.
type Memory struct {
	// Data holds N samples of Tokens*Dim values each.
	Data        []float32
	N           int
	Tokens, Dim int
	// DTypeName is the dtype decoding restores; empty means "float16".
	DTypeName string
	// KeyPrefix starts every key; sample i's key is KeyPrefix + "#i".
	KeyPrefix string
}

// Len implements Source.
func (m *Memory) Len() int { return m.N }

// Shape implements Source.
func (m *Memory) Shape() (int, int) { return m.Tokens, m.Dim }

// DType implements Source.
func (m *Memory) DType() string {
	if m.DTypeName == "" {
		return "float16"
	}
	return m.DTypeName
}

// Inputs implements Source.
func (m *Memory) Inputs() int { return 0 }

// Key implements Source.
func (m *Memory) Key(i int) string { return m.KeyPrefix + "#" + strconv.Itoa(i) }

// ReadSample implements Source.
func (m *Memory) ReadSample(i int, dst []float32) error {
	n := m.Tokens * m.Dim
	if i < 0 || i >= m.N || len(dst) != n || len(m.Data) < m.N*n {
		return fmt.Errorf("memory source: sample %d of %d", i, m.N)
	}
	copy(dst, m.Data[i*n:(i+1)*n])
	return nil
}

// Close implements Source.
func (m *Memory) Close() error { return nil }
