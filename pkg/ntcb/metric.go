package ntcb

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/tensorio"
)

// LoadTaskMetric reads the task metric named by spec, with the default
// blend:
//
//	M.npy, M.npz:NAME              a [D, D] symmetric positive semi-definite matrix
//	W.safetensors:NAME             a linear layer [out, D] that reads the tokens: M = W^T W
//	F.npy                          gradient fields [F, grid tokens, D]: M = mean of sum_t g_t g_t^T,
//	                               and a fit also sets a step per coefficient class (codec.FieldsTaskMetric)
//
// (scripts/task_metric.py computes such a matrix for a model's remaining
// layers.) Every value is read exactly, whatever its stored type. Errors
// name the file and wrap codec.ErrMetric, or the tensorio error of an
// unreadable file. Gradient fields are read a few at a time, here and
// again by a fit (the metric keeps the file's name, not the fields), so
// memory does not grow with them; the file must stay as it is until the
// fit is done.
func LoadTaskMetric(spec string) (*codec.TaskMetric, error) {
	path, _, _ := strings.Cut(spec, ":")
	linear := strings.EqualFold(filepath.Ext(path), ".safetensors")
	if !linear {
		if shape, err := tensorShape(spec); err == nil && len(shape) == 3 {
			m, err := codec.FieldsTaskMetricFrom(newFileFields(spec, shape), shape[2])
			if err != nil {
				return nil, fieldsError(spec, err)
			}
			m.Source = spec
			return m, nil
		}
	}
	v, shape, err := tensorio.ReadAllFloat64(spec)
	if err != nil {
		return nil, fmt.Errorf("task metric: %w", err)
	}
	if len(shape) != 2 {
		return nil, fmt.Errorf("%s: %w: shape %v, want a matrix (or gradient fields [F, grid tokens, D])", spec, codec.ErrMetric, shape)
	}
	var m *codec.TaskMetric
	if linear {
		m, err = codec.LinearTaskMetric(v, shape[0], shape[1])
	} else {
		if shape[0] != shape[1] {
			return nil, fmt.Errorf("%s: %w: shape %v is not square (a linear layer [out, D] goes in a .safetensors file, W.safetensors:NAME)", spec, codec.ErrMetric, shape)
		}
		m, err = codec.NewTaskMetric(v, shape[0], codec.MetricMatrix)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", spec, err)
	}
	m.Source = spec
	return m, nil
}

// tensorShape returns the shape of the tensor spec names.
func tensorShape(spec string) ([]int, error) {
	s, err := tensorio.Open(spec)
	if err != nil {
		return nil, err
	}
	defer s.Close()
	return s.Shape(), nil
}

// LoadTaskFields reads gradient fields [F, grid tokens, D] (the --fields
// output of scripts/task_metric.py fisher) into m: a fit in m then also
// sets a step per coefficient class (codec.TaskMetric.SetFieldSource).
// As with LoadTaskMetric, the fields are read a few at a time, now and by
// the fit.
func LoadTaskFields(m *codec.TaskMetric, spec string) error {
	shape, err := tensorShape(spec)
	if err != nil {
		return fmt.Errorf("task fields: %w", err)
	}
	if len(shape) != 3 {
		return fmt.Errorf("%s: %w: shape %v, want gradient fields [F, grid tokens, D]", spec, codec.ErrMetric, shape)
	}
	if shape[2] != m.Dim() {
		return fmt.Errorf("%s: %w: fields of %d dims for a [%d, %d] metric", spec, codec.ErrMetric, shape[2], m.Dim(), m.Dim())
	}
	if err := m.SetFieldSource(newFileFields(spec, shape)); err != nil {
		return fieldsError(spec, err)
	}
	return nil
}

// fileFields reads gradient fields from a tensor file a few at a time,
// opening it for each read, so that neither the metric nor a fit holds
// them all.
type fileFields struct {
	spec           string
	n, tokens, dim int
}

func newFileFields(spec string, shape []int) *fileFields {
	return &fileFields{spec: spec, n: shape[0], tokens: shape[1], dim: shape[2]}
}

func (f *fileFields) FieldShape() (int, int) { return f.n, f.tokens }

func (f *fileFields) ReadFields(first int, dst []float32) error {
	s, err := tensorio.Open(f.spec)
	if err != nil {
		return readError{fmt.Errorf("task fields: %w", err)}
	}
	defer s.Close()
	if sh := s.Shape(); len(sh) != 3 || sh[0] != f.n || sh[1] != f.tokens || sh[2] != f.dim {
		return readError{fmt.Errorf("%s: %w: gradient fields of shape %v, %v when first read", f.spec, codec.ErrMetric, sh, []int{f.n, f.tokens, f.dim})}
	}
	per := f.tokens * f.dim
	for i := range len(dst) / per {
		if err := s.ReadSample(first+i, dst[i*per:(i+1)*per]); err != nil {
			return readError{fmt.Errorf("task fields: %w", err)}
		}
	}
	return nil
}

// readError is an error of fileFields that already names the file.
type readError struct{ error }

func (e readError) Unwrap() error { return e.error }

// fieldsError names the fields file in a metric's error, unless a read
// error already does.
func fieldsError(spec string, err error) error {
	var re readError
	if errors.As(err, &re) {
		return re.error
	}
	return fmt.Errorf("%s: %w", spec, err)
}
