package ntcb

import (
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
// unreadable file.
func LoadTaskMetric(spec string) (*codec.TaskMetric, error) {
	path, _, _ := strings.Cut(spec, ":")
	linear := strings.EqualFold(filepath.Ext(path), ".safetensors")
	if !linear {
		if shape, err := tensorShape(spec); err == nil && len(shape) == 3 {
			f, err := readFields(spec)
			if err != nil {
				return nil, err
			}
			m, err := codec.FieldsTaskMetric(f, shape[0], shape[1], shape[2])
			if err != nil {
				return nil, fmt.Errorf("%s: %w", spec, err)
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

// readFields reads gradient fields [F, grid tokens, D] as float32.
func readFields(spec string) ([]float32, error) {
	f, _, _, err := tensorio.ReadAll(spec)
	if err != nil {
		return nil, fmt.Errorf("task fields: %w", err)
	}
	return f, nil
}

// LoadTaskFields reads gradient fields [F, grid tokens, D] (the --fields
// output of scripts/task_metric.py fisher) into m: a fit in m then also
// sets a step per coefficient class (codec.TaskMetric.SetFields).
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
	f, err := readFields(spec)
	if err != nil {
		return err
	}
	if err := m.SetFields(f, shape[0], shape[1]); err != nil {
		return fmt.Errorf("%s: %w", spec, err)
	}
	return nil
}
