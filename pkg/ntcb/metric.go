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
//
// (scripts/task_metric.py computes such a matrix for a model's remaining
// layers.) Every value is read exactly, whatever its stored type. Errors
// name the file and wrap codec.ErrMetric, or the tensorio error of an
// unreadable file.
func LoadTaskMetric(spec string) (*codec.TaskMetric, error) {
	path, _, _ := strings.Cut(spec, ":")
	linear := strings.EqualFold(filepath.Ext(path), ".safetensors")
	v, shape, err := tensorio.ReadAllFloat64(spec)
	if err != nil {
		return nil, fmt.Errorf("task metric: %w", err)
	}
	if len(shape) != 2 {
		return nil, fmt.Errorf("%s: %w: shape %v, want a matrix", spec, codec.ErrMetric, shape)
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
