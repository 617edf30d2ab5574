package ntcb

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ntc-project/ntc/pkg/codec"
)

// Sentinel errors of this package; container and codec errors pass through
// wrapped, so errors.Is also finds container.ErrChecksum and the like.
var (
	// ErrCorrupt means the file is well framed but its contents disagree
	// (metadata, index shapes, decoded sizes).
	ErrCorrupt = errors.New("corrupt ntcb file")
	// ErrInput means the inputs cannot be encoded together (mixed shapes
	// or dtypes, no samples).
	ErrInput = errors.New("bad input")
	// ErrModel means a model file does not fit the data or the codec.
	ErrModel = errors.New("model does not match")
	// ErrKind means a well-formed file of the other kind: a model file
	// (.ntcm) where a data file (.ntcb) is wanted, or the reverse.
	ErrKind = errors.New("wrong kind of file")
	// ErrInternal means a worker goroutine panicked: a bug, reported as
	// an error (with the panic's value and stack) so that the caller
	// can report it, rather than as a crash of the process.
	ErrInternal = errors.New("internal error")
)

// FormatName marks the metadata of .ntcb files; ModelFormatName marks model
// files (.ntcm), which are .ntcb containers holding a model and no chunks.
const (
	FormatName      = "ntcb"
	ModelFormatName = "ntcm"
)

// fileKinds names the kinds of file for messages, by metadata format.
var fileKinds = map[string]string{
	FormatName:      "a data file (.ntcb)",
	ModelFormatName: "a model file (.ntcm, from 'ntc fit')",
}

// maxMetaFields bounds the user metadata entries kept in a file.
const maxMetaFields = 256

// Metadata is the JSON metadata block of a .ntcb or .ntcm file.
type Metadata struct {
	// Format is FormatName or ModelFormatName.
	Format string `json:"format"`
	// Tool names the program and version that wrote the file.
	Tool string `json:"tool"`
	// Codec is the codec's registered name; CodecParams its parameters.
	Codec       string         `json:"codec"`
	CodecParams map[string]any `json:"codec_params,omitempty"`
	// Layout is the token layout of every sample.
	Layout codec.Layout `json:"layout"`
	// DType is the input's dtype, which decoding restores.
	DType string `json:"dtype"`
	// Shape is [samples, tokens, dim] of the whole dataset.
	Shape []int `json:"shape"`
	// Inputs is the number of input files.
	Inputs int `json:"inputs"`
	// Meta holds the user's key=value pairs (model name, layer, ...).
	Meta map[string]string `json:"meta,omitempty"`
	// ModelFile names the model file (.ntcm) of a model the file holds by
	// reference, as the writer knew it: a hint where to look first. The
	// hash in the container's model entry is what a reader checks.
	ModelFile string `json:"model_file,omitempty"`
	// FitStats, TargetRatio and TargetQuality, in a model file, describe
	// the data the model was fitted on and the targets it was fitted for,
	// so that encoding other data with it can say when it does not fit.
	FitStats      *DataStats `json:"fit_stats,omitempty"`
	TargetRatio   float64    `json:"target_ratio,omitempty"`
	TargetQuality string     `json:"target_quality,omitempty"`
}

func (m *Metadata) marshal() ([]byte, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("metadata: %w", err)
	}
	return b, nil
}

// parseMetadata decodes and validates a metadata block from an untrusted
// file.
func parseMetadata(b []byte, wantFormat string) (*Metadata, error) {
	var m Metadata
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if m.Format != wantFormat {
		if kind, ok := fileKinds[m.Format]; ok {
			return nil, fmt.Errorf("%w: this is %s, not %s", ErrKind, kind, fileKinds[wantFormat])
		}
		return nil, fmt.Errorf("%w: metadata format %q, want %q", ErrCorrupt, m.Format, wantFormat)
	}
	if err := m.Layout.Validate(); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	if m.ModelFile != "" && (len(m.ModelFile) > 255 || m.ModelFile != filepath.Base(m.ModelFile) || strings.ContainsAny(m.ModelFile, `/\`) || m.ModelFile[0] == '.') {
		return nil, fmt.Errorf("%w: metadata: model file %q is not a plain file name", ErrCorrupt, m.ModelFile)
	}
	if len(m.Meta) > maxMetaFields {
		return nil, fmt.Errorf("%w: %d metadata fields", ErrCorrupt, len(m.Meta))
	}
	if _, err := codec.Lookup(m.Codec); err != nil {
		return nil, fmt.Errorf("%w: metadata: %v", ErrCorrupt, err)
	}
	return &m, nil
}
