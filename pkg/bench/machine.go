package bench

import (
	"bufio"
	"os"
	"runtime"
	"strings"

	"github.com/ntc-project/ntc/internal/cpufeat"
	"github.com/ntc-project/ntc/pkg/codec"
)

// Machine describes where the figures were measured.
type Machine struct {
	OS     string `json:"os"`
	Arch   string `json:"arch"`
	CPU    string `json:"cpu,omitempty"`
	Vector string `json:"vector"` // the kernels' vector level (cpufeat.Describe)
	// TableReads is how the entropy decoder reads its tables (codec.TableReads).
	TableReads string `json:"table_reads,omitempty"`
	NumCPU     int    `json:"num_cpu"`
	GOMAXPROCS int    `json:"gomaxprocs"`
	GoVersion  string `json:"go_version"`
}

// DescribeMachine returns the running machine's description; the CPU model
// comes from /proc/cpuinfo where it is readable.
func DescribeMachine() Machine {
	return Machine{
		OS: runtime.GOOS, Arch: runtime.GOARCH, CPU: cpuModel(), Vector: cpufeat.Describe(), TableReads: codec.TableReads(), NumCPU: runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return ""
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}
