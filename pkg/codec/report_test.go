package codec

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ntc-project/ntc/pkg/metrics"
)

// TestReport prints ratio, bits per value, SNR and cosine figures of every
// lossy codec on the shared token files, each file encoded by itself in
// chunks, with the ntc model fitted on the file and counted in its size.
// It runs only with NTC_REPORT=1:
//
//	NTC_REPORT=1 go test ./pkg/codec -run TestReport -v -timeout 30m
//
// NTC_REPORT_RATIOS (default "4,8,16") and NTC_REPORT_FILES select cases.
func TestReport(t *testing.T) {
	if os.Getenv("NTC_REPORT") == "" {
		t.Skip("set NTC_REPORT=1 to run")
	}
	files := []string{"deit_tiny_block10_dev.npy", "deit_tiny_final_dev.npy"}
	if f := os.Getenv("NTC_REPORT_FILES"); f != "" {
		files = strings.Split(f, ",")
	}
	ratios := []float64{4, 8, 16}
	if r := os.Getenv("NTC_REPORT_RATIOS"); r != "" {
		ratios = nil
		for _, s := range strings.Split(r, ",") {
			v, err := strconv.ParseFloat(s, 64)
			if err != nil {
				t.Fatal(err)
			}
			ratios = append(ratios, v)
		}
	}
	fmt.Printf("| file | codec | target | ratio | bits/value | SNR dB | cos mean | cos p1 | model bytes | fit s |\n")
	fmt.Printf("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n")
	for _, file := range files {
		data, n := loadShared(t, file)
		run := func(name string, opts Options) {
			spec, err := Lookup(name)
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			chunk := 55
			opts.ChunkSamples = chunk
			c, err := spec.New(deitLayout, data, n, opts)
			if err != nil {
				t.Fatal(err)
			}
			fit := time.Since(start)
			total := len(c.Model())
			got := make([]float32, len(data))
			v := deitLayout.Values()
			worst := metrics.Summary{SNR: 1e9, CosMean: 2}
			defer func() {
				if opts.Quality != "" {
					fmt.Printf("|  |  | worst chunk | | | %.2f | %.5f | | | |\n", worst.SNR, worst.CosMean)
				}
			}()
			for s := 0; s < n; s += chunk {
				m := min(chunk, n-s)
				p, err := c.Encode(nil, data[s*v:(s+m)*v], m)
				if err != nil {
					t.Fatal(err)
				}
				total += len(p)
				if err := c.Decode(got[s*v:(s+m)*v], p, m); err != nil {
					t.Fatal(err)
				}
				cq := metrics.Compare(data[s*v:(s+m)*v], got[s*v:(s+m)*v], deitLayout.Dim)
				worst.SNR = min(worst.SNR, cq.SNR)
				worst.CosMean = min(worst.CosMean, cq.CosMean)
			}
			q := metrics.Compare(data, got, deitLayout.Dim)
			ratio := float64(2*len(data)) / float64(total)
			target := "-"
			if opts.Ratio > 0 {
				target = fmt.Sprintf("%gx", opts.Ratio)
			} else if opts.Quality != "" {
				target = opts.Quality
			}
			fmt.Printf("| %s | %s | %s | %.3f | %.3f | %.2f | %.5f | %.5f | %d | %.1f |\n",
				strings.TrimSuffix(file, ".npy"), name, target, ratio, float64(8*total)/float64(len(data)),
				q.SNR, q.CosMean, q.CosP1, len(c.Model()), fit.Seconds())
		}
		if os.Getenv("NTC_REPORT_BASELINES") != "0" {
			for _, name := range []string{"int8", "fp8", "int4"} {
				run(name, Options{})
			}
		}
		for _, r := range ratios {
			run("ntc", Options{Ratio: r})
		}
		if q := os.Getenv("NTC_REPORT_QUALITY"); q != "" {
			for _, s := range strings.Split(q, ",") {
				run("ntc", Options{Quality: s})
			}
		}
	}
}
