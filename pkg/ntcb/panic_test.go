package ntcb

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/ntc-project/ntc/pkg/container"
)

// panicSource is a Memory source whose ReadSample panics from sample
// panicAt on.
type panicSource struct {
	*Memory
	panicAt int
}

func (p *panicSource) ReadSample(i int, dst []float32) error {
	if i >= p.panicAt {
		var s []float32
		_ = s[i] // index out of range
	}
	return p.Memory.ReadSample(i, dst)
}

// TestPipelinePanicIsAnError checks that a panic on one of the pipeline's
// goroutines comes back as an error naming it as an internal error, with
// the panic's message, instead of ending the process (the command line
// would exit 2, which reads as a usage error).
func TestPipelinePanicIsAnError(t *testing.T) {
	const n, tk, d = 6, 17, 12
	src := &panicSource{Memory: &Memory{Data: tokens(3, n, tk, d), N: n, Tokens: tk, Dim: d}, panicAt: 4}
	var buf bytes.Buffer
	w, err := container.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Encode(context.Background(), w, src, Options{Codec: "int8", ChunkBytes: 2 * tk * d, Prefix: -1})
	if err == nil || !strings.Contains(err.Error(), "internal error") || !strings.Contains(err.Error(), "index out of range") {
		t.Fatalf("Encode: %v", err)
	}
}
