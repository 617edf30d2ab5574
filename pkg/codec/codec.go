// Package codec turns chunks of token samples into payload bytes and back.
//
// A codec family is described by a Spec and registered by name and by a
// one-byte id that is stored on disk. A Codec is one configured instance:
// for fixed formats (fp16, int8, ...) it holds only its parameters; for the
// learned codec it holds the fitted model, which the container stores as a
// blob so that a reader can Load it again.
//
// The package does no file I/O: callers hand it values and bytes.
package codec

import (
	"errors"
	"fmt"
	"sort"
	"sync"
)

// Sentinel errors. Callers test them with errors.Is; messages add context by
// wrapping.
var (
	// ErrUnknownCodec means no codec is registered under a name or id.
	ErrUnknownCodec = errors.New("unknown codec")
	// ErrCorrupt means a payload or model does not decode to what it claims.
	ErrCorrupt = errors.New("corrupt payload")
	// ErrBadLayout means a layout or sample count is inconsistent.
	ErrBadLayout = errors.New("bad token layout")
	// ErrRange means a value cannot be represented by the codec (for
	// example beyond the float16 range, or not finite).
	ErrRange = errors.New("value out of range")
	// ErrOption means an option is invalid for the codec.
	ErrOption = errors.New("invalid codec option")
	// ErrShortBuffer means a staging buffer is too small for a chunk.
	ErrShortBuffer = errors.New("staging buffer too small")
)

// MaxValues bounds the number of values in one chunk (n * Tokens * Dim), so
// that a decoder never allocates more than 1 GiB of float32 for one chunk
// whatever a file claims: the hard maximum that the output of a chunk,
// whose size compression decouples from the file's, is checked against.
// Writers keep chunks below it (512 MiB of float16).
const MaxValues = 1 << 28

// Layout describes the tokens of one sample: Tokens = Prefix + GridH*GridW
// rows of Dim values each, in row-major order, prefix tokens first.
type Layout struct {
	Tokens int `json:"tokens"`
	Dim    int `json:"dim"`
	Prefix int `json:"prefix_tokens"`
	GridH  int `json:"grid_h"`
	GridW  int `json:"grid_w"`
}

// Validate checks that the layout is self-consistent and small enough to
// decode.
func (l Layout) Validate() error {
	switch {
	case l.Tokens <= 0 || l.Dim <= 0:
		return fmt.Errorf("%w: %d tokens x %d dims", ErrBadLayout, l.Tokens, l.Dim)
	case l.Prefix < 0 || l.GridH < 0 || l.GridW < 0:
		return fmt.Errorf("%w: negative prefix or grid", ErrBadLayout)
	case int64(l.Tokens)*int64(l.Dim) > MaxValues:
		return fmt.Errorf("%w: %d x %d values per sample exceeds %d", ErrBadLayout, l.Tokens, l.Dim, MaxValues)
	case int64(l.Prefix)+int64(l.GridH)*int64(l.GridW) != int64(l.Tokens):
		return fmt.Errorf("%w: %d prefix + %dx%d grid != %d tokens", ErrBadLayout, l.Prefix, l.GridH, l.GridW, l.Tokens)
	}
	return nil
}

// Values returns the number of values in one sample.
func (l Layout) Values() int { return l.Tokens * l.Dim }

// CheckCount validates a sample count for one chunk and returns the number
// of values n samples hold.
func (l Layout) CheckCount(n int) (int, error) {
	if n <= 0 || int64(n)*int64(l.Values()) > MaxValues {
		return 0, fmt.Errorf("%w: %d samples of %d values", ErrBadLayout, n, l.Values())
	}
	return n * l.Values(), nil
}

// Codec encodes and decodes chunks of samples with fixed parameters.
// Implementations are safe for concurrent use.
type Codec interface {
	// Name returns the registered name of the codec family.
	Name() string
	// Layout returns the sample layout the codec was made for.
	Layout() Layout
	// Encode appends to dst the payload for n samples held contiguously in
	// src (n*Layout().Values() values) and returns the extended slice.
	Encode(dst []byte, src []float32, n int) ([]byte, error)
	// Decode decodes a payload holding n samples into dst, which must have
	// length n*Layout().Values(). A payload that does not decode to exactly
	// that many values is reported with ErrCorrupt.
	Decode(dst []float32, payload []byte, n int) error
	// Model returns the serialized model that Spec.Load restores, or nil
	// when the codec needs none.
	Model() []byte
	// Params describes the codec's parameters for a file's metadata.
	Params() map[string]any
}

// Versioned is implemented by codecs whose models have a format version
// (the learned codec's model version).
type Versioned interface {
	ModelVersion() int
}

// Splitter is implemented by codecs whose payloads can be read one sample
// at a time. Split returns the length of a payload's head and of each of
// its n samples' parts, in order: head + sum(parts) == len(payload). For any
// run of consecutive samples [a, b), the head followed by the parts of
// samples a..b-1 is itself a valid payload of b-a samples that decodes to
// the same values as those samples of the whole payload. Split checks only
// what it needs to find the boundaries; Decode still checks everything. A
// payload of an older version that cannot be split is an error wrapping
// ErrCorrupt; its writer never asks.
type Splitter interface {
	Split(payload []byte, n int) (head int, parts []int, err error)
}

// Options configure a codec when it is made. The zero value asks for the
// codec's defaults.
type Options struct {
	// Ratio is the target compression ratio against float16 for codecs
	// with rate control; 0 means the codec's default.
	Ratio float64
	// Quality is a quality target such as "cos=0.99" or "snr=20" for codecs
	// with rate control; empty means none.
	Quality string
	// Level is the entropy coder's effort, 0 for the default.
	Level int
	// ChunkSamples is the number of samples per chunk the caller will
	// encode, so that rate control can account for per-chunk costs; 0
	// means unknown.
	ChunkSamples int
	// TotalSamples is the number of samples the caller will encode with
	// the codec, when it fits on fewer: rate control then spreads the
	// model's bytes over all of them, as the file will. 0 means the
	// training samples are all there is.
	TotalSamples int
	// Progress, if set, is called as a learned codec's fit goes through
	// its phases (FitPhasePCA, FitPhaseRate): done of total steps of the
	// phase (total 0: unknown). It is called from the goroutine that
	// called Spec.New.
	Progress func(phase string, done, total int)
	// TaskMetric, when set, is the distortion measure a learned codec
	// fits (basis, bit allocation, quantization) instead of plain squared
	// error; decoding does not depend on it. Codecs without a fit ignore
	// it.
	TaskMetric *TaskMetric
}

// The phases of a learned codec's fit, as Options.Progress names them.
const (
	FitPhasePCA  = "PCA"
	FitPhaseRate = "rate search"
)

// MaxRatio is the highest target ratio a codec with rate control accepts.
const MaxRatio = 1000

// CheckOptions reports, wrapping ErrOption, whether opts are invalid for
// the codec family named name, before any data is read: a ratio or quality
// target for a codec without rate control, both at once, a ratio outside
// [1, MaxRatio], or a quality target that does not parse.
func CheckOptions(name string, opts Options) error {
	s, err := Lookup(name)
	if err != nil {
		return err
	}
	switch {
	case opts.Ratio == 0 && opts.Quality == "":
		return nil
	case !s.Learned:
		return fmt.Errorf("%w: %s has a fixed rate and takes no ratio or quality target", ErrOption, name)
	case opts.Ratio != 0 && opts.Quality != "":
		return fmt.Errorf("%w: give a ratio or a quality target, not both", ErrOption)
	case opts.Ratio != 0 && !(opts.Ratio >= 1 && opts.Ratio <= MaxRatio):
		return fmt.Errorf("%w: ratio %g is not in [1, %d]", ErrOption, opts.Ratio, MaxRatio)
	case opts.Quality != "":
		_, _, err := parseQuality(opts.Quality)
		return err
	}
	return nil
}

// ParseQuality parses a quality target ("cos=0.99", "snr=20") into its
// metric ("cos" or "snr") and value, wrapping ErrOption when it is not one.
func ParseQuality(s string) (metric string, value float64, err error) {
	kind, v, err := parseQuality(s)
	if err != nil {
		return "", 0, err
	}
	if kind == qualityCos {
		return "cos", float64(v), nil
	}
	return "snr", float64(v), nil
}

// Spec describes a codec family.
type Spec struct {
	// Name is the family's name on the command line and in metadata.
	Name string
	// ID is stored in every chunk; it is never reused for another codec.
	ID uint8
	// Lossless reports whether float16 input decodes bit for bit.
	Lossless bool
	// Learned reports whether New fits a model on its training samples;
	// when false, callers may pass nil training data.
	Learned bool
	// Summary is a one-line description for help texts.
	Summary string
	// New makes a codec for layout l. train holds n samples to fit on
	// (n*l.Values() values); fixed formats ignore it and accept nil.
	New func(l Layout, train []float32, n int, opts Options) (Codec, error)
	// Load restores a codec from the model that Codec.Model returned
	// (nil for codecs without a model). The model is untrusted input.
	Load func(l Layout, model []byte) (Codec, error)
}

var registry struct {
	sync.RWMutex
	byName map[string]*Spec
	byID   map[uint8]*Spec
}

// Register adds a codec family. It panics on a duplicate name or id, which
// is a programming error caught at init time.
func Register(s Spec) {
	registry.Lock()
	defer registry.Unlock()
	if registry.byName == nil {
		registry.byName = map[string]*Spec{}
		registry.byID = map[uint8]*Spec{}
	}
	if s.Name == "" || s.New == nil || s.Load == nil {
		panic("codec: incomplete spec " + s.Name)
	}
	if _, ok := registry.byName[s.Name]; ok {
		panic("codec: duplicate name " + s.Name)
	}
	if _, ok := registry.byID[s.ID]; ok {
		panic(fmt.Sprintf("codec: duplicate id %d", s.ID))
	}
	registry.byName[s.Name] = &s
	registry.byID[s.ID] = &s
}

// Lookup returns the codec family registered under name.
func Lookup(name string) (Spec, error) {
	registry.RLock()
	defer registry.RUnlock()
	s, ok := registry.byName[name]
	if !ok {
		return Spec{}, fmt.Errorf("%w %q (known: %v)", ErrUnknownCodec, name, namesLocked())
	}
	return *s, nil
}

// LookupID returns the codec family with the on-disk id.
func LookupID(id uint8) (Spec, error) {
	registry.RLock()
	defer registry.RUnlock()
	s, ok := registry.byID[id]
	if !ok {
		return Spec{}, fmt.Errorf("%w: id %d", ErrUnknownCodec, id)
	}
	return *s, nil
}

// Names lists the registered codec names in sorted order.
func Names() []string {
	registry.RLock()
	defer registry.RUnlock()
	return namesLocked()
}

func namesLocked() []string {
	names := make([]string, 0, len(registry.byName))
	for n := range registry.byName {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
