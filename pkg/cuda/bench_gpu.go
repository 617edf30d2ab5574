//go:build cuda

package cuda

import (
	"context"
	"encoding/binary"
	"fmt"
	"maps"
	"math"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// Bench measures GPU decoding of the .ntcb at ntcbPath against loading the
// float16 .npy at npyPath, which must hold the same tokens.
func Bench(ctx context.Context, dev *Device, ntcbPath, npyPath string, opts BenchOptions) (*BenchResult, error) {
	if opts.Repeats <= 0 {
		opts.Repeats = 5
	}
	f, err := ntcb.Open(ntcbPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := f.Reader
	l := r.Layout()
	// Whole chunks, enough for the samples asked for.
	c := r.Container()
	nChunks, n := 0, 0
	for nChunks < c.NumChunks() && (opts.Samples <= 0 || n < opts.Samples) {
		n += c.Chunk(nChunks).Count
		nChunks++
	}
	dec, err := NewDecoder(dev, opts.Decoder)
	if err != nil {
		return nil, err
	}
	defer dec.Close()
	g := dec.be.(*gpu)
	res := &BenchResult{Device: dev.Name(), NTCB: ntcbPath, NPY: npyPath, Samples: n, Tokens: l.Tokens, Dim: l.Dim, OutputType: "float16"}
	if opts.Decoder.F32 {
		res.OutputType = "float32"
	}
	res.OutputBytes = dec.OutputBytes(l, n)
	if st, err := os.Stat(ntcbPath); err == nil {
		res.NTCBBytes = st.Size()
	}
	out, err := dev.Alloc(res.OutputBytes)
	if err != nil {
		return nil, err
	}
	defer dev.Free(out)
	out2, err := dev.Alloc(res.OutputBytes)
	if err != nil {
		return nil, err
	}
	defer dev.Free(out2)
	samples := allSamples(n)

	// A first decode warms up the uploads and buffers, and is checked
	// against the CPU decoder.
	if err := dec.DecodeSamples(ctx, r, samples, out); err != nil {
		return nil, err
	}
	if err := benchCheck(dev, dec, r, out, n, res); err != nil {
		return nil, err
	}

	sampleBytes := dec.OutputBytes(l, 1)
	names := map[string]bool{}
	for i := range nChunks {
		if spec, err := codec.LookupID(c.Chunk(i).Codec); err == nil {
			names[spec.Name] = true
		}
	}
	res.Codecs = strings.Join(slices.Sorted(maps.Keys(names)), ",")
	ln := g.lanes[0]
	ct, err := timeEvents(dev, ln.s, opts.Repeats, func() error { return dev.CopyDtoD(out2, out, res.OutputBytes, ln.s) })
	if err != nil {
		return nil, err
	}
	res.CopySeconds = ct

	// measure times, with the entropy decoding on the device or on the
	// host: staging alone, the device part alone, and end to end.
	measure := func(mode codec.StageMode) (m benchMode, err error) {
		staged, hostBufs, st, err := stageChunks(r, nChunks, mode, opts.Decoder.Workers, opts.Repeats)
		if err != nil {
			return m, err
		}
		m.stage = st
		devStaged := make([]DevPtr, nChunks)
		defer func() {
			for _, p := range devStaged {
				if p != 0 {
					dev.Free(p)
				}
			}
		}()
		for i, st := range staged {
			m.staged += int64(st.Size)
			if devStaged[i], err = dev.Alloc(int64(max(st.Size, 16))); err != nil {
				return m, err
			}
			if err := dev.CopyHtoD(devStaged[i], hostBufs[i][:st.Size], nil); err != nil {
				return m, err
			}
		}
		m.kernel, err = timeEvents(dev, ln.s, opts.Repeats, func() error {
			pos := int64(0)
			for i, st := range staged {
				if err := g.run(ln, i, l, st, devStaged[i], out+DevPtr(pos*sampleBytes)); err != nil {
					return err
				}
				pos += int64(st.N)
			}
			return nil
		})
		if err == nil {
			err = g.check()
		}
		if err != nil {
			return m, err
		}
		dopts := opts.Decoder
		dopts.HostEntropy = mode == codec.StageHostEntropy
		d2, err := NewDecoder(dev, dopts)
		if err != nil {
			return m, err
		}
		defer d2.Close()
		if err := d2.DecodeSamples(ctx, r, samples, out); err != nil { // warm up
			return m, err
		}
		var e2e []time.Duration
		for range opts.Repeats {
			t0 := time.Now()
			f2, err := ntcb.Open(ntcbPath)
			if err != nil {
				return m, err
			}
			err = d2.DecodeSamples(ctx, f2.Reader, samples, out)
			f2.Close()
			if err != nil {
				return m, err
			}
			e2e = append(e2e, time.Since(t0))
		}
		m.e2e = median(e2e)
		return m, nil
	}
	dm, err := measure(codec.StageAuto)
	if err != nil {
		return nil, err
	}
	hm, err := measure(codec.StageHostEntropy)
	if err != nil {
		return nil, err
	}
	res.StageSeconds, res.DeviceSeconds, res.E2ESeconds, res.StagedBytes = dm.stage, dm.kernel, dm.e2e, dm.staged
	res.StageHostSeconds, res.KernelSeconds, res.E2EHostSeconds, res.StagedHostBytes = hm.stage, hm.kernel, hm.e2e, hm.staged

	// End to end from the .npy.
	if res.NPYSeconds, res.NPYBytes, err = benchNPY(dev, npyPath, out, dec.OutputBytes(l, n)/int64(dec.be.elemSize())*2, opts.Repeats); err != nil {
		return nil, err
	}
	gb := float64(res.OutputBytes) / 1e9
	res.KernelGBps = gb / res.KernelSeconds
	res.DeviceGBps = gb / res.DeviceSeconds
	res.CopyGBps = gb / res.CopySeconds
	res.KernelVsCopy = res.CopySeconds / res.KernelSeconds
	res.DeviceVsCopy = res.CopySeconds / res.DeviceSeconds
	res.StageGBps = gb / res.StageSeconds
	res.StageHostGBps = gb / res.StageHostSeconds
	res.E2EGBps = gb / res.E2ESeconds
	res.E2EHostGBps = gb / res.E2EHostSeconds
	res.NPYGBps = gb / res.NPYSeconds
	res.Speedup = res.NPYSeconds / res.E2ESeconds
	res.SpeedupHost = res.NPYSeconds / res.E2EHostSeconds
	return res, nil
}

// benchMode holds the times of one way of splitting the work, in seconds.
type benchMode struct {
	stage, kernel, e2e float64
	staged             int64
}

// stageChunks stages the first n chunks of r on workers goroutines,
// repeats times, and returns them with the median time in seconds.
func stageChunks(r *ntcb.Reader, n int, mode codec.StageMode, workers, repeats int) ([]codec.Staged, [][]byte, float64, error) {
	staged := make([]codec.Staged, n)
	bufs := make([][]byte, n)
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var times []time.Duration
	for range repeats {
		t0 := time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		var first error
		next := make(chan int)
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var raw []byte
				for i := range next {
					st, buf, rw, err := r.StageChunk(i, raw, mode, func(size int) ([]byte, error) {
						if cap(bufs[i]) < size {
							bufs[i] = make([]byte, size)
						}
						return bufs[i][:size], nil
					})
					raw = rw
					mu.Lock()
					if err != nil && first == nil {
						first = err
					}
					staged[i], bufs[i] = st, buf
					mu.Unlock()
				}
			}()
		}
		for i := range n {
			next <- i
		}
		close(next)
		wg.Wait()
		if first != nil {
			return nil, nil, 0, first
		}
		times = append(times, time.Since(t0))
	}
	return staged, bufs, median(times), nil
}

// benchCheck compares a few decoded samples with the CPU decoder.
func benchCheck(dev *Device, dec *Decoder, r *ntcb.Reader, out DevPtr, n int, res *BenchResult) error {
	if err := dev.Synchronize(); err != nil {
		return err
	}
	l := r.Layout()
	sb := dec.OutputBytes(l, 1)
	host := make([]byte, sb)
	for _, s := range slices.Compact([]int{0, n / 2, n - 1}) {
		if err := dev.CopyDtoH(host, out+DevPtr(int64(s)*sb), sb, nil); err != nil {
			return err
		}
		want, err := r.ReadSample(s, nil)
		if err != nil {
			return err
		}
		var num, den float64
		for j, w := range want {
			var g float32
			if sb == int64(4*len(want)) {
				g = math.Float32frombits(binary.LittleEndian.Uint32(host[4*j:]))
			} else {
				g = f16.ToFloat32(binary.LittleEndian.Uint16(host[2*j:]))
			}
			d := float64(g) - float64(w)
			num += d * d
			den += float64(w) * float64(w)
		}
		res.MaxRelErr = max(res.MaxRelErr, math.Sqrt(num/max(den, 1e-30)))
		res.Checked++
	}
	return nil
}

// timeEvents runs fn repeats times on s between two events and returns
// the median time in seconds.
func timeEvents(dev *Device, s *Stream, repeats int, fn func() error) (float64, error) {
	e0, err := dev.NewEvent()
	if err != nil {
		return 0, err
	}
	defer e0.Close()
	e1, err := dev.NewEvent()
	if err != nil {
		return 0, err
	}
	defer e1.Close()
	var ts []time.Duration
	for range repeats {
		if err := e0.Record(s); err != nil {
			return 0, err
		}
		if err := fn(); err != nil {
			return 0, err
		}
		if err := e1.Record(s); err != nil {
			return 0, err
		}
		if err := e1.Synchronize(); err != nil {
			return 0, err
		}
		d, err := Elapsed(e0, e1)
		if err != nil {
			return 0, err
		}
		ts = append(ts, d)
	}
	return median(ts), nil
}

func median(ts []time.Duration) float64 {
	s := slices.Clone(ts)
	slices.Sort(s)
	return s[len(s)/2].Seconds()
}

// npyPiece is the size of the pinned buffers the .npy is read through.
const npyPiece = 64 << 20

// benchNPY times loading want bytes of float16 tokens from a .npy to the
// device: reads into two pinned buffers in turn, each copied to the device
// on its own stream while the other is filled.
func benchNPY(dev *Device, path string, out DevPtr, want int64, repeats int) (float64, int64, error) {
	bufs := make([][]byte, 2)
	streams := make([]*Stream, 2)
	for i := range bufs {
		var err error
		if bufs[i], err = dev.AllocHost(npyPiece); err != nil {
			return 0, 0, err
		}
		defer dev.FreeHost(bufs[i])
		if streams[i], err = dev.NewStream(); err != nil {
			return 0, 0, err
		}
		defer streams[i].Close()
	}
	var size int64
	var ts []time.Duration
	for range repeats {
		t0 := time.Now()
		f, err := os.Open(path)
		if err != nil {
			return 0, 0, err
		}
		off, n, err := npyData(f, path)
		size = n + off
		if err == nil && n < want {
			err = fmt.Errorf("%s: %d bytes of float16 data, want %d (the tokens of the .ntcb)", path, n, want)
		}
		for pos, i := int64(0), 0; err == nil && pos < want; i++ {
			b, s := bufs[i%2], streams[i%2]
			if err = s.Synchronize(); err != nil {
				break
			}
			m := min(int64(len(b)), want-pos)
			if _, err = f.ReadAt(b[:m], off+pos); err != nil {
				break
			}
			err = dev.CopyHtoD(out+DevPtr(pos), b[:m], s)
			pos += m
		}
		for _, s := range streams {
			if e := s.Synchronize(); e != nil && err == nil {
				err = e
			}
		}
		f.Close()
		if err != nil {
			return 0, 0, err
		}
		ts = append(ts, time.Since(t0))
	}
	return median(ts), size, nil
}

// npyData reads a .npy header and returns where its data starts and how
// many bytes it holds. The data must be little-endian float16.
func npyData(f *os.File, path string) (int64, int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, 0, err
	}
	hdr := make([]byte, 12)
	if _, err := f.ReadAt(hdr, 0); err != nil || string(hdr[:6]) != "\x93NUMPY" {
		return 0, 0, fmt.Errorf("%s: not a .npy file", path)
	}
	var off int64
	switch hdr[6] {
	case 1:
		off = 10 + int64(binary.LittleEndian.Uint16(hdr[8:]))
	case 2, 3:
		off = 12 + int64(binary.LittleEndian.Uint32(hdr[8:]))
	default:
		return 0, 0, fmt.Errorf("%s: .npy version %d", path, hdr[6])
	}
	if off > st.Size() {
		return 0, 0, fmt.Errorf("%s: truncated .npy header", path)
	}
	dict := make([]byte, off)
	if _, err := f.ReadAt(dict, 0); err != nil {
		return 0, 0, err
	}
	if !strings.Contains(string(dict), "'<f2'") || strings.Contains(string(dict), "'fortran_order': True") {
		return 0, 0, fmt.Errorf("%s: the .npy baseline needs C-ordered little-endian float16 data", path)
	}
	return off, st.Size() - off, nil
}
