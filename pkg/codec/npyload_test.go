package codec

import (
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// sharedTokens returns the path of a shared token file, or skips the test
// when the shared data folder (../shared/data/tokens from the repository
// root) is absent.
func sharedTokens(t testing.TB, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	p := filepath.Join(root, "..", "shared", "data", "tokens", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("shared data absent: %v", err)
	}
	return p
}

var npyCache sync.Map // path -> *npyData

type npyData struct {
	data  []float32
	shape []int
}

// loadNPY reads a token file with tensorio, once per test binary.
func loadNPY(t testing.TB, path string) ([]float32, []int) {
	t.Helper()
	if v, ok := npyCache.Load(path); ok {
		d := v.(*npyData)
		return d.data, d.shape
	}
	data, shape, _, err := tensorio.ReadAll(path)
	if err != nil {
		t.Fatal(err)
	}
	npyCache.Store(path, &npyData{data, shape})
	return data, shape
}

// deitLayout is the layout of the shared DeiT-Tiny files.
var deitLayout = Layout{Tokens: 197, Dim: 192, Prefix: 1, GridH: 14, GridW: 14}

// loadShared loads a shared token file and returns its samples and count.
func loadShared(t testing.TB, name string) ([]float32, int) {
	data, shape := loadNPY(t, sharedTokens(t, name))
	if len(shape) != 3 || shape[1] != 197 || shape[2] != 192 {
		t.Fatalf("unexpected shape %v", shape)
	}
	return data, shape[0]
}
