package ntcb

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/container"
)

// ErrModelNotFound means a file records its model by reference (format
// version 2) and no model with that hash was found where the reader looked.
var ErrModelNotFound = errors.New("model not found")

// maxModelScan bounds the .ntcm files Models reads in one directory when
// it looks for a model by hash.
const maxModelScan = 64

// ModelLocator looks for the blob of a model by its hash in one place (a
// dataset's model files, the neighbours of a remote file). It returns the
// blob, unchecked, and where it was found, or a nil blob and a note of
// where it looked; an error only when the place cannot be read at all.
// hint is the model file name the referring file's metadata records ("" if
// none).
type ModelLocator func(codecID uint8, sha [32]byte, hint string) (blob []byte, where string, err error)

// Models finds the models that files hold by reference and shares each
// model, once loaded, among all the readers given the same Models. It
// looks, in order, in the model files added with AddFile or AddModel, then
// through the locators added with AddLocator. Every blob it finds is
// checked against the hash the file records before any decode uses it.
// The zero value is not usable; call NewModels. A Models is safe for
// concurrent use.
type Models struct {
	mu       sync.Mutex
	files    []string // added, not yet read
	blobs    map[[32]byte]modelBlob
	seen     []string // what was found where, for messages
	locators []ModelLocator
	codecs   map[codecKey]codec.Codec
}

type modelBlob struct {
	codec uint8
	blob  []byte
	where string
}

type codecKey struct {
	sha    [32]byte
	layout codec.Layout
}

// NewModels returns an empty Models.
func NewModels() *Models {
	return &Models{blobs: map[[32]byte]modelBlob{}, codecs: map[codecKey]codec.Codec{}}
}

// AddFile adds a model file (.ntcm) to look in. It is read when a model is
// first looked for.
func (m *Models) AddFile(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.files = append(m.files, path)
}

// AddModel adds a model already read, found at where.
func (m *Models) AddModel(mod *Model, where string) error {
	spec, err := codec.Lookup(mod.Codec)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.addBlobLocked(spec.ID, mod.Blob, where)
	return nil
}

// AddLocator adds a place to look after the model files.
func (m *Models) AddLocator(l ModelLocator) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.locators = append(m.locators, l)
}

func (m *Models) addBlobLocked(id uint8, blob []byte, where string) {
	sha := sha256.Sum256(blob)
	if _, ok := m.blobs[sha]; !ok {
		m.blobs[sha] = modelBlob{codec: id, blob: blob, where: where}
	}
	m.seen = append(m.seen, fmt.Sprintf("%s (model %s)", where, shortHash(sha)))
}

// load returns the codec of spec for layout l with the external model info
// describes, finding and checking its blob. near names the referring file,
// for messages.
func (m *Models) load(spec codec.Spec, l codec.Layout, info container.ModelInfo, hint, near string, extra []ModelLocator) (codec.Codec, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	key := codecKey{info.SHA256, l}
	if c, ok := m.codecs[key]; ok {
		return c, nil
	}
	b, ok := m.blobs[info.SHA256]
	if !ok {
		for len(m.files) > 0 && !ok {
			path := m.files[0]
			m.files = m.files[1:]
			mod, err := ReadModelFile(path)
			if err != nil {
				return nil, err
			}
			id, err := codec.Lookup(mod.Codec)
			if err != nil {
				return nil, err
			}
			m.addBlobLocked(id.ID, mod.Blob, path)
			b, ok = m.blobs[info.SHA256]
		}
	}
	var looked []string
	locators := append(append([]ModelLocator(nil), m.locators...), extra...)
	for i := 0; !ok && i < len(locators); i++ {
		blob, where, err := locators[i](spec.ID, info.SHA256, hint)
		if err != nil {
			return nil, err
		}
		if blob == nil {
			if where != "" {
				looked = append(looked, where)
			}
			continue
		}
		if sha256.Sum256(blob) != info.SHA256 {
			looked = append(looked, where+" (another model)")
			continue
		}
		m.addBlobLocked(spec.ID, blob, where)
		b, ok = m.blobs[info.SHA256], true
	}
	if !ok {
		return nil, m.notFound(spec, info, looked)
	}
	if b.codec != spec.ID || len(b.blob) != info.Length {
		return nil, fmt.Errorf("%w: %s holds model %s for codec id %d, %d bytes; %s records codec id %d, %d bytes",
			ErrModel, b.where, shortHash(info.SHA256), b.codec, len(b.blob), near, spec.ID, info.Length)
	}
	c, err := spec.Load(l, b.blob)
	if err != nil {
		return nil, fmt.Errorf("%s: %s model: %w", b.where, spec.Name, err)
	}
	m.codecs[key] = c
	return c, nil
}

// notFound says which model is missing and where the search went.
func (m *Models) notFound(spec codec.Spec, info container.ModelInfo, looked []string) error {
	where := append(append([]string(nil), m.seen...), looked...)
	msg := "no model file given"
	if len(where) > 0 {
		msg = "looked in " + strings.Join(where, ", ")
	}
	return fmt.Errorf("%w: the file holds its %s model by reference, sha256 %s (%d bytes); %s. "+
		"Keep the model file (.ntcm) next to the file or in its dataset, or name it (--model; in Python ntcb.open(..., model=...))",
		ErrModelNotFound, spec.Name, FormatHash(info.SHA256), info.Length, msg)
}

// where returns where the model with the hash was found, "" if it was not.
func (m *Models) where(sha [32]byte) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.blobs[sha].where
}

// FormatHash writes a SHA-256 as 64 lowercase hex digits.
func FormatHash(h [32]byte) string { return fmt.Sprintf("%x", h[:]) }

func shortHash(h [32]byte) string { return fmt.Sprintf("%x…", h[:6]) }

// DirLocator looks for a model next to a local file: the file its metadata
// names, then every .ntcm file in dir (at most 64 of them, sorted, each
// read only if its index records the hash sought or records none).
func DirLocator(dir string) ModelLocator {
	return func(id uint8, sha [32]byte, hint string) ([]byte, string, error) {
		var names []string
		if hint != "" && filepath.Base(hint) == hint {
			names = append(names, hint)
		}
		all, _ := filepath.Glob(filepath.Join(dir, "*.ntcm"))
		sort.Strings(all)
		for _, p := range all {
			if b := filepath.Base(p); b != hint {
				names = append(names, b)
			}
		}
		if len(names) > maxModelScan {
			names = names[:maxModelScan]
		}
		var notes []string
		for _, name := range names {
			path := filepath.Join(dir, name)
			blob, note := blobWithHash(path, id, sha)
			if blob != nil {
				return blob, path, nil
			}
			if note != "" {
				notes = append(notes, path+" ("+note+")")
			}
		}
		switch {
		case len(notes) == 0:
			return nil, fmt.Sprintf("%s (no .ntcm files)", dir), nil
		case len(notes) > 4:
			notes = append(notes[:4], fmt.Sprintf("%d more .ntcm files in %s", len(notes)-4, dir))
		}
		return nil, strings.Join(notes, ", "), nil
	}
}

// blobWithHash returns the model blob of codec id in the model file at
// path if its hash is sha; otherwise nil and what the file holds instead
// ("" if it does not exist).
func blobWithHash(path string, id uint8, sha [32]byte) ([]byte, string) {
	f, err := container.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, ""
	}
	if err != nil {
		return nil, "unreadable: " + err.Error()
	}
	defer f.Close()
	if _, err := parseMetadata(f.Metadata(), ModelFormatName); err != nil {
		return nil, "not a model file"
	}
	for _, mi := range f.Models() {
		if mi.Codec != id || mi.External {
			continue
		}
		if mi.SHA256 != [32]byte{} && mi.SHA256 != sha {
			return nil, "model " + shortHash(mi.SHA256)
		}
		blob, err := f.ReadModel(id)
		if err != nil {
			return nil, "unreadable: " + err.Error()
		}
		if got := sha256.Sum256(blob); got != sha {
			return nil, "model " + shortHash(got)
		}
		return blob, ""
	}
	return nil, "no model for this codec"
}

// ReadOption configures NewReader and Open.
type ReadOption func(*readOptions)

type readOptions struct {
	models   *Models
	locators []ModelLocator
	name     string
}

func readOpts(opts []ReadOption) readOptions {
	var o readOptions
	for _, f := range opts {
		f(&o)
	}
	if o.models == nil {
		o.models = NewModels()
	}
	return o
}

// WithModels makes a reader find the models its file holds by reference in
// m (and share them with the other readers given m).
func WithModels(m *Models) ReadOption { return func(o *readOptions) { o.models = m } }

// WithLocator adds a place where this reader alone looks for its model,
// after those of its Models.
func WithLocator(l ModelLocator) ReadOption {
	return func(o *readOptions) { o.locators = append(o.locators, l) }
}

// WithName names the file in messages (a path or URL).
func WithName(name string) ReadOption { return func(o *readOptions) { o.name = name } }

// ModelWhere says where the reader found the model with the hash that its
// file holds by reference; "" if it has not looked for it yet, or did not
// find it.
func (r *Reader) ModelWhere(sha [32]byte) string { return r.ro.models.where(sha) }
