package ntcb

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/ntc-project/ntc/pkg/tensorio"
)

// rusage returns the CPU time of the calling thread (who = 1,
// RUSAGE_THREAD) or of the process (who = 0).
func rusage(who int) time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(who, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkExport measures Export of the bench file (block10, 192 real
// samples, four times over) per codec and worker count into a float16 .npy (in
// $NTC_BENCH_DIR, else a temporary folder; aborted, so no fsync is
// timed), in float16 bytes of output. serial-% is the share of the
// process's CPU time spent on the goroutine that writes in order (the
// rest runs on the workers), and cpu-MB/s the rate by the process's CPU
// time: by Amdahl's law, two workers are at most
// 100/(serial% + (100-serial%)/2) times faster than one.
func BenchmarkExport(b *testing.B) {
	dir := os.Getenv("NTC_BENCH_DIR")
	if dir == "" {
		dir = b.TempDir()
	}
	for _, name := range []string{"int8", "fp16", "ntc"} {
		r, _ := benchReader(b, name)
		idx := make([]int, 4*r.Len()) // the file four times over, as a longer export
		for i := range idx {
			idx[i] = i % r.Len()
		}
		l := r.Layout()
		for _, workers := range []int{1, 2} {
			b.Run(fmt.Sprintf("%s/workers-%d", name, workers), func(b *testing.B) {
				b.SetBytes(int64(2 * len(idx) * l.Values()))
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var serial, total time.Duration
				for range b.N {
					w, err := tensorio.Create(filepath.Join(dir, "export.npy"), tensorio.Float16, len(idx), l.Tokens, l.Dim)
					if err != nil {
						b.Fatal(err)
					}
					t0, p0 := rusage(1), rusage(0)
					if err := Export(context.Background(), r, idx, w, nil, workers); err != nil {
						b.Fatal(err)
					}
					serial += rusage(1) - t0
					total += rusage(0) - p0
					w.Abort()
				}
				if total > 0 {
					b.ReportMetric(100*serial.Seconds()/total.Seconds(), "serial-%")
					b.ReportMetric(float64(2*len(idx)*l.Values()*b.N)/total.Seconds()/1e6, "cpu-MB/s")
				}
			})
		}
	}
}
