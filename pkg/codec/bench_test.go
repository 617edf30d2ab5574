package codec

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// benchData returns real tokens when the shared data is present, else
// synthetic ones, and a name for the case.
func benchData(b *testing.B, n int) ([]float32, string) {
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "shared", "data", "tokens", "deit_tiny_block10_dev.npy")
	if _, err := os.Stat(p); err == nil {
		data, _ := loadNPY(b, p)
		// A stride through the photos, so that the chunk is representative.
		v := deitLayout.Values()
		out := make([]float32, 0, n*v)
		for s := range n {
			j := (s * 7) % (len(data) / v)
			out = append(out, data[j*v:(j+1)*v]...)
		}
		return out, "block10"
	}
	return synthTokens(deitLayout, n, 3), "synthetic"
}

var benchCodecs = []struct {
	name string
	opts Options
}{
	{"fp16", Options{}},
	{"int8", Options{}},
	{"fp8", Options{}},
	{"int4", Options{}},
	{"ntc", Options{Ratio: 4}},
	{"ntc", Options{Ratio: 8}},
	{"ntc", Options{Ratio: 16}},
}

type benchMode int

const (
	benchEncode benchMode = iota
	benchDecode
	benchStage
	benchStageStreams
)

func benchCodec(b *testing.B, mode benchMode) {
	const n = 55
	data, src := benchData(b, n)
	for _, bc := range benchCodecs {
		spec, err := Lookup(bc.name)
		if err != nil {
			b.Fatal(err)
		}
		name := bc.name
		if bc.opts.Ratio != 0 {
			name = fmt.Sprintf("%s-%gx", bc.name, bc.opts.Ratio)
		}
		b.Run(name+"/"+src, func(b *testing.B) {
			c, err := spec.New(deitLayout, data, n, bc.opts)
			if err != nil {
				b.Fatal(err)
			}
			p, err := c.Encode(nil, data, n)
			if err != nil {
				b.Fatal(err)
			}
			out := make([]float32, len(data))
			var staged []byte
			var st Staged
			stageMode := StageHostEntropy
			if mode == benchStageStreams {
				stageMode = StageAuto
			}
			if mode == benchStage || mode == benchStageStreams {
				size, err := c.(Stager).StageSize(p, n, stageMode)
				if err != nil {
					b.Fatal(err)
				}
				staged = make([]byte, size)
			}
			b.SetBytes(int64(2 * len(data)))
			b.ReportAllocs()
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			b.ResetTimer()
			cpu0 := threadCPU()
			defer func() {
				b.ReportMetric(float64(2*len(data))*float64(b.N)/(threadCPU()-cpu0).Seconds()/1e6, "cpuMB/s")
			}()
			for range b.N {
				switch mode {
				case benchDecode:
					err = c.Decode(out, p, n)
				case benchStage, benchStageStreams:
					st, err = c.(Stager).Stage(staged, p, n, stageMode)
				default:
					p, err = c.Encode(p[:0], data, n)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(2*len(data))/float64(len(p)), "ratio")
			if mode == benchStage || mode == benchStageStreams {
				b.ReportMetric(float64(2*len(data))/float64(st.Size), "fp16/staged")
			}
		})
	}
}

// BenchmarkDecode measures decoding speed in float16 bytes of output.
func BenchmarkDecode(b *testing.B) { benchCodec(b, benchDecode) }

// BenchmarkStage measures the host part of a device decoder's work
// (Stager.Stage) in float16 bytes of output, and reports how much smaller
// than the float16 output the staged data that crosses to the device is.
func BenchmarkStage(b *testing.B) { benchCodec(b, benchStage) }

// BenchmarkStageStreams measures the host part when the device does the
// entropy decoding too (the learned codec's coefficient streams are
// copied, not decoded).
func BenchmarkStageStreams(b *testing.B) { benchCodec(b, benchStageStreams) }

// BenchmarkEncode measures encoding speed (fit excluded) in float16 bytes
// of input.
func BenchmarkEncode(b *testing.B) { benchCodec(b, benchEncode) }

// BenchmarkEntropy measures the learned codec's entropy decoding alone
// (symbols and dequantization into the coefficient buffers, no inverse
// transform) at 8x, in coded symbols per second of thread CPU time.
func BenchmarkEntropy(b *testing.B) {
	const n = 55
	data, _ := benchData(b, n)
	c, err := newNTC(deitLayout, data, n, Options{Ratio: 8})
	if err != nil {
		b.Fatal(err)
	}
	nc := c.(*ntcCodec)
	p, err := c.Encode(nil, data, n)
	if err != nil {
		b.Fatal(err)
	}
	ch, err := nc.parse(p, n)
	if err != nil {
		b.Fatal(err)
	}
	s := nc.scratch()
	per := blockSize * nc.k
	_, ents := nc.decPlan(ch.stepCode)
	syms := 0
	for _, e := range ents {
		syms += n * len(e.tab)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ResetTimer()
	start := threadCPU()
	for range b.N {
		if err := nc.symbols(&ch, s, func(_, bi int) []float32 { return s.coef[bi*per : (bi+1)*per] }, nil); err != nil {
			b.Fatal(err)
		}
	}
	cpu := threadCPU() - start
	b.ReportMetric(float64(syms)*float64(b.N)/cpu.Seconds()/1e6, "Msym/s")
	b.ReportMetric(cpu.Seconds()*1e9/float64(syms)/float64(b.N), "ns/sym")
}
