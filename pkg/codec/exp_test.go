package codec

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ntc-project/ntc/pkg/metrics"
)

// threadCPU returns the CPU time the calling OS thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(1, &ru) // RUSAGE_THREAD
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestExperiment runs one ntc configuration on block10 at NTC_EXP ratios
// and prints the figures, for tuning. NTC_EXP_K caps the components,
// NTC_EXP_LAMBDA sets the trellis' rate weight (1/256), NTC_EXP_PASSES the fit's trellis passes, NTC_EXP_NODCT=1 replaces
// the block DCT by the identity and NTC_EXP_FILE picks the file.
func TestExperiment(t *testing.T) {
	r := os.Getenv("NTC_EXP")
	if r == "" {
		t.Skip("set NTC_EXP=8,16 to run")
	}
	if s := os.Getenv("NTC_EXP_K"); s != "" {
		v, _ := strconv.Atoi(s)
		old := ntcMaxK
		ntcMaxK = v
		defer func() { ntcMaxK = old }()
	}
	if s := os.Getenv("NTC_EXP_LAMBDA"); s != "" {
		v, _ := strconv.Atoi(s)
		old := ntcLambda
		ntcLambda = uint8(v)
		defer func() { ntcLambda = old }()
	}
	if s := os.Getenv("NTC_EXP_PASSES"); s != "" {
		v, _ := strconv.Atoi(s)
		old := ntcFitPasses
		ntcFitPasses = v
		defer func() { ntcFitPasses = old }()
	}
	if os.Getenv("NTC_EXP_NODCT") != "" {
		old := dctMats
		for n := 1; n <= blockSide; n++ {
			dctMats[n] = [blockSide][blockSide]float32{}
			for i := range n {
				dctMats[n][i][i] = 1
			}
		}
		defer func() { dctMats = old }()
	}
	file := "deit_tiny_block10_dev.npy"
	if f := os.Getenv("NTC_EXP_FILE"); f != "" {
		file = f
	}
	data, n := loadShared(t, file)
	for _, rs := range strings.Split(r, ",") {
		ratio, _ := strconv.ParseFloat(rs, 64)
		c, err := newNTC(deitLayout, data, n, Options{Ratio: ratio, ChunkSamples: 55})
		if err != nil {
			t.Fatal(err)
		}
		nc := c.(*ntcCodec)
		total := len(c.Model())
		got := make([]float32, len(data))
		v := deitLayout.Values()
		var dec time.Duration
		syms := 0
		for s := 0; s < n; s += 55 {
			m := min(55, n-s)
			p, err := c.Encode(nil, data[s*v:(s+m)*v], m)
			if err != nil {
				t.Fatal(err)
			}
			total += len(p)
			runtime.LockOSThread()
			st := threadCPU()
			for range 3 {
				if err := c.Decode(got[s*v:(s+m)*v], p, m); err != nil {
					t.Fatal(err)
				}
			}
			dec += (threadCPU() - st) / 3
			runtime.UnlockOSThread()
		}
		syms = len(nc.plan(nc.stepCode))
		q := metrics.Compare(data, got, 192)
		fmt.Printf("ratio %.3f SNR %.3f cos %.5f p1 %.5f K %d plan/block %d model %d decode %.1f MB/s (thread CPU time)\n",
			float64(2*len(data))/float64(total), q.SNR, q.CosMean, q.CosP1, nc.k, syms, len(c.Model()),
			float64(2*len(data))/dec.Seconds()/1e6)
	}
}
