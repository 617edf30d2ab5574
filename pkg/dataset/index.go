package dataset

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
)

// IndexName is the file name of a dataset's index in its directory.
const IndexName = "index.json"

// FormatName is the "format" field of every index.json; Version is the
// format version this package writes and the highest it reads.
const (
	FormatName = "ntc-dataset"
	Version    = 1
)

// KeysName is the file that holds the keys of a dataset whose keys are too
// many to inline in index.json (more than InlineKeyBytes of them).
const KeysName = "keys.jsonl"

// Limits of the format. A reader refuses an index that declares more
// (ErrTooLarge); a writer never writes more.
const (
	// MaxIndexBytes bounds index.json.
	MaxIndexBytes = 64 << 20
	// MaxKeysBytes bounds the keys file.
	MaxKeysBytes = 4 << 30
	// MaxShards bounds the shards of a dataset.
	MaxShards = 1 << 20
	// MaxModels bounds the model files of a dataset.
	MaxModels = 256
	// MaxNameLen bounds a file name (a relative path) in the index.
	MaxNameLen = 255
	// MaxSamples bounds the samples of a dataset.
	MaxSamples = 1 << 40
	// MaxFileBytes bounds the declared size of one shard or model file.
	MaxFileBytes = 1 << 44
	// InlineKeyBytes is how many bytes of keys a writer inlines in
	// index.json; a dataset with more keeps them in KeysName.
	InlineKeyBytes = 1 << 20
)

// Sentinel errors of this package. Errors from pkg/ntcb and pkg/container
// pass through wrapped.
var (
	// ErrCorrupt means an index (or keys file) is malformed or contradicts
	// itself.
	ErrCorrupt = errors.New("corrupt dataset index")
	// ErrTooLarge means an index declares more than a limit allows.
	ErrTooLarge = errors.New("exceeds a dataset limit")
	// ErrMismatch means a shard or model file is not the one the index
	// describes: another size, checksum, sample count, key or layout.
	ErrMismatch = errors.New("file does not match the dataset index")
	// ErrUnsupportedVersion means index.json has a format version this
	// build does not read.
	ErrUnsupportedVersion = errors.New("unsupported dataset format version")
	// ErrNotFound means a key or sample is not in the dataset.
	ErrNotFound = errors.New("not found")
	// ErrInput means the inputs of a write cannot form one dataset.
	ErrInput = errors.New("bad dataset input")
)

// Index is the content of a dataset's index.json: what the dataset holds,
// its shards in order and the models they reference. docs/format.md
// specifies it.
type Index struct {
	// Format is FormatName; Version the format version.
	Format  string `json:"format"`
	Version int    `json:"version"`
	// Tool names the program that wrote the index.
	Tool string `json:"tool,omitempty"`
	// Codec names the codec of every shard; DType the input dtype that
	// decoding restores; Layout the token layout of every sample.
	Codec  string       `json:"codec"`
	DType  string       `json:"dtype"`
	Layout codec.Layout `json:"layout"`
	// Samples is the total number of samples, the sum over the shards.
	Samples int64 `json:"samples"`
	// Models are the model files that shards reference by hash.
	Models []Model `json:"models"`
	// Shards lists the shard files in dataset order: sample i of the
	// dataset is sample i - first of the shard whose samples start at
	// first.
	Shards []Shard `json:"shards"`
	// Keys, when set, names the file that holds every shard's keys;
	// otherwise each Shard lists its own.
	Keys *File `json:"keys_file,omitempty"`
	// Meta holds the user's key=value pairs.
	Meta map[string]string `json:"meta,omitempty"`
}

// File names a file of the dataset with its size and content hash.
type File struct {
	// Name is a path relative to the dataset's directory ("/"-separated).
	Name string `json:"file"`
	// Bytes is the file's size; SHA256 the hex SHA-256 of its content.
	Bytes  int64  `json:"bytes"`
	SHA256 string `json:"sha256"`
}

// Model is a model file (.ntcm) that shards reference.
type Model struct {
	File
	// Codec names the codec the model is for.
	Codec string `json:"codec"`
	// ModelSHA256 is the hex SHA-256 of the model blob inside the file:
	// the hash that shards record in their reference.
	ModelSHA256 string `json:"model_sha256"`
}

// Shard is one .ntcb file of the dataset.
type Shard struct {
	File
	// Samples is the number of samples in the shard (at least 1).
	Samples int `json:"samples"`
	// Keys are the shard's sample keys in order, unless the index keeps
	// them in a keys file.
	Keys []string `json:"keys,omitempty"`
}

// ParseIndex decodes and checks an index.json from an untrusted source: the
// format and version, every name, size, count and hash against the format's
// limits, the sum of the sample counts, and that keys are unique. With a
// keys file the shards hold no keys until ReadKeys fills them.
func ParseIndex(b []byte) (*Index, error) {
	if len(b) > MaxIndexBytes {
		return nil, fmt.Errorf("index of %d bytes > %d: %w", len(b), MaxIndexBytes, ErrTooLarge)
	}
	var probe struct {
		Format  string `json:"format"`
		Version int    `json:"version"`
	}
	if err := json.Unmarshal(b, &probe); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if probe.Format != FormatName {
		return nil, fmt.Errorf("%w: format %q, want %q", ErrCorrupt, probe.Format, FormatName)
	}
	if probe.Version < 1 || probe.Version > Version {
		return nil, fmt.Errorf("version %d (this build reads 1 to %d): %w", probe.Version, Version, ErrUnsupportedVersion)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var x Index
	if err := dec.Decode(&x); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the index object", ErrCorrupt)
	}
	if err := x.check(); err != nil {
		return nil, err
	}
	return &x, nil
}

// check validates an index read from untrusted bytes (or about to be
// written).
func (x *Index) check() error {
	if err := x.Layout.Validate(); err != nil {
		return fmt.Errorf("%w: layout: %v", ErrCorrupt, err)
	}
	if _, err := codec.Lookup(x.Codec); err != nil {
		return fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if x.DType == "" || len(x.DType) > 32 {
		return fmt.Errorf("%w: dtype %q", ErrCorrupt, x.DType)
	}
	if len(x.Meta) > 256 {
		return fmt.Errorf("%w: %d metadata fields", ErrCorrupt, len(x.Meta))
	}
	if len(x.Models) > MaxModels {
		return fmt.Errorf("%d models > %d: %w", len(x.Models), MaxModels, ErrTooLarge)
	}
	if len(x.Shards) > MaxShards {
		return fmt.Errorf("%d shards > %d: %w", len(x.Shards), MaxShards, ErrTooLarge)
	}
	if x.Samples < 0 || x.Samples > MaxSamples {
		return fmt.Errorf("%d samples: %w", x.Samples, ErrTooLarge)
	}
	names := map[string]string{IndexName: "the index"}
	claim := func(name, what string) error {
		if err := checkName(name); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		if prev, ok := names[name]; ok {
			return fmt.Errorf("%w: %s and %s are both %q", ErrCorrupt, prev, what, name)
		}
		names[name] = what
		return nil
	}
	hashes := map[string]bool{}
	for i, m := range x.Models {
		what := fmt.Sprintf("model %d", i)
		if err := claim(m.Name, what); err != nil {
			return err
		}
		if err := m.File.check(what); err != nil {
			return err
		}
		if _, err := codec.Lookup(m.Codec); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrCorrupt, what, err)
		}
		if _, err := ParseHash(m.ModelSHA256); err != nil {
			return fmt.Errorf("%s model_sha256: %w", what, err)
		}
		if hashes[m.ModelSHA256] {
			return fmt.Errorf("%w: %s: a second file of model %s", ErrCorrupt, what, m.ModelSHA256)
		}
		hashes[m.ModelSHA256] = true
	}
	if x.Keys != nil {
		if err := claim(x.Keys.Name, "the keys file"); err != nil {
			return err
		}
		if err := x.Keys.check("the keys file"); err != nil {
			return err
		}
		if x.Keys.Bytes > MaxKeysBytes {
			return fmt.Errorf("keys file of %d bytes > %d: %w", x.Keys.Bytes, MaxKeysBytes, ErrTooLarge)
		}
	}
	var total int64
	keys := map[string]int{}
	for i, s := range x.Shards {
		what := fmt.Sprintf("shard %d", i)
		if err := claim(s.Name, what); err != nil {
			return err
		}
		if err := s.File.check(what); err != nil {
			return err
		}
		if s.Samples < 1 || s.Samples > container.MaxSamples {
			return fmt.Errorf("%w: %s (%s): %d samples", ErrCorrupt, what, s.Name, s.Samples)
		}
		total += int64(s.Samples)
		if total > MaxSamples {
			return fmt.Errorf("more than %d samples: %w", int64(MaxSamples), ErrTooLarge)
		}
		switch {
		case x.Keys != nil && s.Keys != nil:
			return fmt.Errorf("%w: %s (%s) lists keys although the index has a keys file", ErrCorrupt, what, s.Name)
		case x.Keys == nil && len(s.Keys) != s.Samples:
			return fmt.Errorf("%w: %s (%s): %d keys for %d samples", ErrCorrupt, what, s.Name, len(s.Keys), s.Samples)
		}
		if err := addKeys(keys, s.Keys, i, s.Name); err != nil {
			return err
		}
	}
	if total != x.Samples {
		return fmt.Errorf("%w: the shards hold %d samples, the index declares %d", ErrCorrupt, total, x.Samples)
	}
	return nil
}

// addKeys checks the keys of shard i and adds them to seen.
func addKeys(seen map[string]int, keys []string, shard int, name string) error {
	for j, k := range keys {
		if len(k) == 0 || len(k) > container.MaxKeyLen || !utf8.ValidString(k) {
			return fmt.Errorf("%w: shard %d (%s) key %d: %d bytes, want 1 to %d of UTF-8", ErrCorrupt, shard, name, j, len(k), container.MaxKeyLen)
		}
		if prev, ok := seen[k]; ok {
			return fmt.Errorf("%w: key %q is in shard %d and in shard %d (%s)", ErrCorrupt, k, prev, shard, name)
		}
		seen[k] = shard
	}
	return nil
}

func (f File) check(what string) error {
	if f.Bytes < 0 || f.Bytes > MaxFileBytes {
		return fmt.Errorf("%s (%s): %d bytes: %w", what, f.Name, f.Bytes, ErrTooLarge)
	}
	if _, err := ParseHash(f.SHA256); err != nil {
		return fmt.Errorf("%s (%s) sha256: %w", what, f.Name, err)
	}
	return nil
}

// checkName accepts a relative path of plain segments ([A-Za-z0-9._-],
// none empty, none starting with a dot), so that no index can name a file
// outside its directory, a hidden temporary file, or anything a URL would
// have to escape.
func checkName(name string) error {
	if name == "" || len(name) > MaxNameLen {
		return fmt.Errorf("%w: file name %q: want 1 to %d bytes", ErrCorrupt, name, MaxNameLen)
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg[0] == '.' {
			return fmt.Errorf("%w: file name %q: empty or dot segment", ErrCorrupt, name)
		}
		for i := 0; i < len(seg); i++ {
			c := seg[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
				return fmt.Errorf("%w: file name %q: byte %q not allowed", ErrCorrupt, name, c)
			}
		}
	}
	return nil
}

// Hash is a SHA-256 digest.
type Hash = [sha256.Size]byte

// ParseHash parses 64 lowercase hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) || strings.ToLower(s) != s {
		return h, fmt.Errorf("%w: %q is not 64 lowercase hex digits", ErrCorrupt, s)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("%w: %q is not 64 lowercase hex digits", ErrCorrupt, s)
	}
	return h, nil
}

// FormatHash writes h as 64 lowercase hex digits, as the index stores it.
func FormatHash(h Hash) string { return hex.EncodeToString(h[:]) }

// Marshal returns the index as index.json: one field per line, one line
// per shard and model, keys inline or in the keys file as the index says.
func (x *Index) Marshal() ([]byte, error) {
	if err := x.check(); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	field := func(name string, v any, last bool) error {
		j, err := json.Marshal(v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "  %q: %s", name, j)
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		return nil
	}
	list := func(name string, n int, item func(i int) any, last bool) error {
		fmt.Fprintf(&b, "  %q: [", name)
		for i := range n {
			j, err := json.Marshal(item(i))
			if err != nil {
				return err
			}
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n    ")
			b.Write(j)
		}
		if n > 0 {
			b.WriteString("\n  ")
		}
		b.WriteByte(']')
		if !last {
			b.WriteByte(',')
		}
		b.WriteByte('\n')
		return nil
	}
	b.WriteString("{\n")
	var err error
	for _, f := range []struct {
		name string
		v    any
		skip bool
	}{
		{"format", x.Format, false}, {"version", x.Version, false}, {"tool", x.Tool, x.Tool == ""},
		{"codec", x.Codec, false}, {"dtype", x.DType, false}, {"layout", x.Layout, false},
		{"samples", x.Samples, false}, {"meta", x.Meta, len(x.Meta) == 0}, {"keys_file", x.Keys, x.Keys == nil},
	} {
		if !f.skip && err == nil {
			err = field(f.name, f.v, false)
		}
	}
	if err == nil {
		err = list("models", len(x.Models), func(i int) any { return x.Models[i] }, false)
	}
	if err == nil {
		err = list("shards", len(x.Shards), func(i int) any { return x.Shards[i] }, true)
	}
	if err != nil {
		return nil, fmt.Errorf("index: %w", err)
	}
	b.WriteString("}\n")
	return b.Bytes(), nil
}

// MarshalKeys returns the keys file of the index's shards: one line per
// shard, a JSON array of its keys in order.
func (x *Index) MarshalKeys() ([]byte, error) {
	var b bytes.Buffer
	for _, s := range x.Shards {
		j, err := json.Marshal(s.Keys)
		if err != nil {
			return nil, err
		}
		b.Write(j)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// ReadKeys reads the keys file of an index that has one from r (at most
// x.Keys.Bytes bytes are read), checks its size, hash and every key, and
// fills in the shards' keys.
func (x *Index) ReadKeys(r io.Reader) error {
	if x.Keys == nil {
		return nil
	}
	want, _ := ParseHash(x.Keys.SHA256)
	h := sha256.New()
	lr := &io.LimitedReader{R: io.TeeReader(r, h), N: x.Keys.Bytes + 1}
	br := bufio.NewReaderSize(lr, 1<<16)
	seen := map[string]int{}
	for i := range x.Shards {
		s := &x.Shards[i]
		// One line holds at most the shard's keys, each quoted and escaped
		// (6 bytes per byte at worst), and commas.
		maxLine := int64(s.Samples) * (6*container.MaxKeyLen + 3)
		line, err := readLine(br, min(maxLine, x.Keys.Bytes)+2)
		if err != nil {
			return fmt.Errorf("%s: line %d: %w", x.Keys.Name, i+1, err)
		}
		var keys []string
		if err := json.Unmarshal(line, &keys); err != nil {
			return fmt.Errorf("%w: %s: line %d: %v", ErrCorrupt, x.Keys.Name, i+1, err)
		}
		if len(keys) != s.Samples {
			return fmt.Errorf("%w: %s: line %d: %d keys for the %d samples of shard %d (%s)", ErrCorrupt, x.Keys.Name, i+1, len(keys), s.Samples, i, s.Name)
		}
		if err := addKeys(seen, keys, i, s.Name); err != nil {
			return err
		}
		s.Keys = keys
	}
	if _, err := br.ReadByte(); err != io.EOF {
		return fmt.Errorf("%w: %s: data after the keys of the last shard", ErrCorrupt, x.Keys.Name)
	}
	if read := x.Keys.Bytes + 1 - lr.N; read != x.Keys.Bytes {
		return fmt.Errorf("%w: %s is %d bytes, the index says %d", ErrMismatch, x.Keys.Name, read, x.Keys.Bytes)
	}
	var got Hash
	h.Sum(got[:0])
	if got != want {
		return fmt.Errorf("%w: %s: sha256 %s, the index says %s", ErrMismatch, x.Keys.Name, FormatHash(got), x.Keys.SHA256)
	}
	return nil
}

// readLine reads one '\n'-terminated line of at most max bytes.
func readLine(br *bufio.Reader, max int64) ([]byte, error) {
	var line []byte
	for {
		part, err := br.ReadSlice('\n')
		if int64(len(line)+len(part)) > max {
			return nil, fmt.Errorf("%w: line longer than %d bytes", ErrCorrupt, max)
		}
		line = append(line, part...)
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF):
			return nil, fmt.Errorf("%w: cut short", ErrCorrupt)
		default:
			return nil, err
		}
	}
}

// names lists the files the index names, the index itself aside.
func (x *Index) names() []string {
	var names []string
	for _, m := range x.Models {
		names = append(names, m.Name)
	}
	for _, s := range x.Shards {
		names = append(names, s.Name)
	}
	if x.Keys != nil {
		names = append(names, x.Keys.Name)
	}
	return names
}

// Starts returns the index in the dataset of each shard's first sample,
// and the total as a last element.
func (x *Index) Starts() []int64 {
	starts := make([]int64, len(x.Shards)+1)
	for i, s := range x.Shards {
		starts[i+1] = starts[i] + int64(s.Samples)
	}
	return starts
}

// Model returns the model with the given blob hash.
func (x *Index) Model(sha Hash) (Model, bool) {
	want := FormatHash(sha)
	for _, m := range x.Models {
		if m.ModelSHA256 == want {
			return m, true
		}
	}
	return Model{}, false
}

// ShardName is the file name of shard i in a dataset written by this
// package.
func ShardName(i int) string {
	s := strconv.Itoa(i)
	if len(s) < 5 {
		s = strings.Repeat("0", 5-len(s)) + s
	}
	return "shard-" + s + ".ntcb"
}
