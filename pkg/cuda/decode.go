package cuda

import (
	"context"
	"fmt"
	"runtime"
	"sync"

	"github.com/ntc-project/ntc/pkg/codec"
	"github.com/ntc-project/ntc/pkg/ntcb"
)

// This file holds the part of the GPU decoder that is plain Go: which
// chunks to decode for a set of samples, and the pipeline that overlaps
// reading and staging chunks on the CPU (codec.Stager, on many goroutines)
// with the copies and kernels on the GPU. It runs against a backend: the
// GPU in builds with the cuda tag, a CPU model of it in the tests, so the
// host logic is tested on machines without a GPU.

// DecoderOptions configure a Decoder.
type DecoderOptions struct {
	// F32 makes the decoder write float32 tokens instead of float16.
	F32 bool
	// Workers is the number of goroutines that read and stage chunks on
	// the CPU; 0 means GOMAXPROCS.
	Workers int
	// Lanes is the number of CUDA streams that copy and decode chunks at
	// once; 0 means 2.
	Lanes int
	// HostEntropy makes the CPU entropy-decode the learned codec's
	// chunks, as it must for payloads without slices (version 4); by
	// default the GPU does it.
	HostEntropy bool
}

// backend is the device side of the pipeline.
type backend interface {
	// elemSize is the size of an output value: 2 or 4.
	elemSize() int
	// allocHost and freeHost manage host staging buffers (pinned memory).
	allocHost(n int) ([]byte, error)
	freeHost(b []byte) error
	// finish enqueues on lane the copy of host[:st.Size] to the device
	// and the program that finishes chunk into out.
	finish(lane, chunk int, l codec.Layout, st codec.Staged, host []byte, out DevPtr) error
	// scratch returns lane's output buffer of at least n bytes, for chunks
	// of which only some samples are wanted.
	scratch(lane int, n int64) (DevPtr, error)
	// copy enqueues on lane a device-to-device copy.
	copy(lane int, dst, src DevPtr, n int64) error
	// wait blocks until the work enqueued on lane is done.
	wait(lane int) error
	// check reports the errors that the device found in the data of
	// the chunks finished since the last check (after a wait).
	check() error
	// allocOut, freeOut and toHost manage and read back the device
	// buffer of DecodeToHost.
	allocOut(n int64) (DevPtr, error)
	freeOut(p DevPtr) error
	toHost(dst []byte, src DevPtr) error
}

// chunkJob is one chunk to decode: which of its samples go where.
type chunkJob struct {
	chunk int
	// runs of consecutive samples: count samples from position pos in the
	// chunk go to output sample out onwards.
	runs []sampleRun
	// direct is set when the whole chunk goes, in order, to run 0's place.
	direct bool
}

type sampleRun struct{ pos, out, count int }

// planChunks groups the wanted samples by chunk, in the order the chunks
// are first wanted. Sample samples[i] goes to output position i.
func planChunks(r *ntcb.Reader, samples []int) ([]chunkJob, error) {
	c := r.Container()
	byChunk := map[int]int{}
	var jobs []chunkJob
	for i, s := range samples {
		if s < 0 || s >= r.Len() {
			return nil, fmt.Errorf("sample %d out of range [0, %d)", s, r.Len())
		}
		ci, pos := c.SampleChunk(s)
		j, ok := byChunk[ci]
		if !ok {
			j = len(jobs)
			byChunk[ci] = j
			jobs = append(jobs, chunkJob{chunk: ci})
		}
		runs := jobs[j].runs
		if n := len(runs); n > 0 && runs[n-1].pos+runs[n-1].count == pos && runs[n-1].out+runs[n-1].count == i {
			runs[n-1].count++
		} else {
			jobs[j].runs = append(runs, sampleRun{pos, i, 1})
		}
	}
	for j := range jobs {
		rs := jobs[j].runs
		jobs[j].direct = len(rs) == 1 && rs[0].pos == 0 && rs[0].count == c.Chunk(jobs[j].chunk).Count
	}
	return jobs, nil
}

// staged is a chunk staged in a host buffer, on its way to the device.
type staged struct {
	job *chunkJob
	st  codec.Staged
	buf []byte
	err error
}

// hostPool recycles host staging buffers, growing them as chunks need.
type hostPool struct {
	be   backend
	free chan []byte // n slots: buffers, or nil for a slot without one yet
}

func newHostPool(be backend, n int) *hostPool {
	p := &hostPool{be: be, free: make(chan []byte, n)}
	for range n {
		p.free <- nil
	}
	return p
}

// get waits for a free buffer and returns it grown to at least n bytes.
func (p *hostPool) get(ctx context.Context, n int) ([]byte, error) {
	var b []byte
	select {
	case b = <-p.free:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if cap(b) >= n {
		return b[:n], nil
	}
	if b != nil {
		_ = p.be.freeHost(b[:cap(b)])
	}
	nb, err := p.be.allocHost(n + n/8) // room to grow a little
	if err != nil {
		p.free <- nil
		return nil, err
	}
	return nb[:n], nil
}

// put returns a buffer from get, or nil for a buffer that was dropped.
func (p *hostPool) put(b []byte) { p.free <- b }

// close frees every buffer; no get or put may run.
func (p *hostPool) close() error {
	var first error
	for len(p.free) > 0 {
		if b := <-p.free; b != nil {
			if err := p.be.freeHost(b[:cap(b)]); err != nil && first == nil {
				first = err
			}
		}
	}
	return first
}

// decodeSamples decodes samples[i] of r into output position i of out.
func decodeSamples(ctx context.Context, be backend, pool *hostPool, lanes, workers int, mode codec.StageMode, r *ntcb.Reader, samples []int, out DevPtr) error {
	jobs, err := planChunks(r, samples)
	if err != nil {
		return err
	}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	l := r.Layout()
	sampleBytes := int64(l.Values()) * int64(be.elemSize())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	todo := make(chan *chunkJob)
	ready := make(chan staged, workers)
	var wg sync.WaitGroup
	go func() {
		defer close(todo)
		for j := range jobs {
			select {
			case todo <- &jobs[j]:
			case <-ctx.Done():
				return
			}
		}
	}()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var raw []byte
			for job := range todo {
				var s staged
				s.job = job
				s.st, s.buf, raw, s.err = r.StageChunk(job.chunk, raw, mode, func(n int) ([]byte, error) {
					if s.buf != nil { // a retry with a larger size
						pool.put(s.buf)
					}
					b, err := pool.get(ctx, n)
					s.buf = b
					return b, err
				})
				if s.err != nil && s.buf != nil {
					pool.put(s.buf)
					s.buf = nil
				}
				select {
				case ready <- s:
				case <-ctx.Done():
					if s.buf != nil {
						pool.put(s.buf)
					}
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(ready) }()

	// The device side, on this goroutine: chunks in the order they are
	// staged, round robin over the lanes. A lane's previous buffer goes
	// back to the pool once the lane is done with it.
	inFlight := make([][]byte, lanes)
	var late [][]byte
	lane := 0
	for s := range ready {
		if err == nil {
			err = s.err
		}
		if err == nil {
			if err = be.wait(lane); err == nil {
				if inFlight[lane] != nil {
					pool.put(inFlight[lane])
					inFlight[lane] = nil
				}
				err = enqueueChunk(be, lane, l, s, out, sampleBytes)
			}
		}
		if err != nil {
			cancel()
			// The buffer may be under a copy that was enqueued: it goes
			// back only after the lanes are waited for.
			if s.buf != nil {
				late = append(late, s.buf)
			}
			continue // drain, so that the workers end
		}
		inFlight[lane] = s.buf
		lane = (lane + 1) % lanes
	}
	for i := range lanes {
		if werr := be.wait(i); werr != nil && err == nil {
			err = werr
		}
		if inFlight[i] != nil {
			pool.put(inFlight[i])
		}
	}
	for _, b := range late {
		pool.put(b)
	}
	if cerr := be.check(); cerr != nil && err == nil {
		err = cerr
	}
	return err
}

// enqueueChunk enqueues the device work of one staged chunk on lane.
func enqueueChunk(be backend, lane int, l codec.Layout, s staged, out DevPtr, sampleBytes int64) error {
	job := s.job
	if job.direct {
		return be.finish(lane, job.chunk, l, s.st, s.buf, out+DevPtr(int64(job.runs[0].out)*sampleBytes))
	}
	tmp, err := be.scratch(lane, int64(s.st.N)*sampleBytes)
	if err != nil {
		return err
	}
	if err := be.finish(lane, job.chunk, l, s.st, s.buf, tmp); err != nil {
		return err
	}
	for _, rn := range job.runs {
		if err := be.copy(lane, out+DevPtr(int64(rn.out)*sampleBytes), tmp+DevPtr(int64(rn.pos)*sampleBytes), int64(rn.count)*sampleBytes); err != nil {
			return err
		}
	}
	return nil
}

// allSamples returns 0..n-1.
func allSamples(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Decoder decodes .ntcb chunks into GPU memory: it reads and stages chunks
// on the CPU (entropy decoding for the learned codec) on Workers
// goroutines, copies the staged data to the GPU from pinned buffers, and
// finishes the chunks there with kernels and a float16 GEMM, overlapping
// all of these. Make one with NewDecoder; a Decoder runs one decode at a
// time.
type Decoder struct {
	mu    sync.Mutex
	be    backend
	pool  *hostPool
	opts  DecoderOptions
	close func() error
}

func newDecoder(be backend, opts DecoderOptions, close func() error) *Decoder {
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.Lanes <= 0 {
		opts.Lanes = 2
	}
	return &Decoder{be: be, pool: newHostPool(be, opts.Workers+opts.Lanes), opts: opts, close: close}
}

// OutputBytes returns the size of n decoded samples of layout l.
func (d *Decoder) OutputBytes(l codec.Layout, n int) int64 {
	return int64(n) * int64(l.Values()) * int64(d.be.elemSize())
}

// DecodeSamples decodes sample samples[i] of r to position i of out, a
// device buffer of at least OutputBytes(r.Layout(), len(samples)) bytes,
// in [N, Tokens, Dim] order. Every chunk is checked against its checksum
// and decoded once however many of its samples are wanted. The work is
// done when DecodeSamples returns.
func (d *Decoder) DecodeSamples(ctx context.Context, r *ntcb.Reader, samples []int, out DevPtr) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.be == nil {
		return fmt.Errorf("cuda: decoder is closed")
	}
	mode := codec.StageAuto
	if d.opts.HostEntropy {
		mode = codec.StageHostEntropy
	}
	return decodeSamples(ctx, d.be, d.pool, d.opts.Lanes, d.opts.Workers, mode, r, samples, out)
}

// DecodeToHost decodes sample samples[i] of r and calls emit(i, data)
// with its tokens (float16 or float32 bytes, [Tokens, Dim]), in order. It
// decodes through a device buffer of at most batchBytes (at least one
// sample), copied back batch by batch; data is valid only during the call.
func (d *Decoder) DecodeToHost(ctx context.Context, r *ntcb.Reader, samples []int, batchBytes int64, emit func(i int, data []byte) error) (err error) {
	if len(samples) == 0 {
		return nil
	}
	d.mu.Lock()
	be := d.be
	d.mu.Unlock()
	if be == nil {
		return fmt.Errorf("cuda: decoder is closed")
	}
	per := d.OutputBytes(r.Layout(), 1)
	batch := int(min(max(1, batchBytes/per), int64(len(samples))))
	out, err := be.allocOut(per * int64(batch))
	if err != nil {
		return err
	}
	defer func() {
		if ferr := be.freeOut(out); err == nil {
			err = ferr
		}
	}()
	host := make([]byte, per*int64(batch))
	for lo := 0; lo < len(samples); lo += batch {
		hi := min(lo+batch, len(samples))
		if err := d.DecodeSamples(ctx, r, samples[lo:hi], out); err != nil {
			return err
		}
		n := per * int64(hi-lo)
		if err := be.toHost(host[:n], out); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			if err := emit(i, host[int64(i-lo)*per:int64(i-lo+1)*per]); err != nil {
				return err
			}
		}
	}
	return nil
}

// DecodeFile decodes every sample of r into out.
func (d *Decoder) DecodeFile(ctx context.Context, r *ntcb.Reader, out DevPtr) error {
	return d.DecodeSamples(ctx, r, allSamples(r.Len()), out)
}

// Close frees the decoder's host and device buffers.
func (d *Decoder) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.be == nil {
		return nil
	}
	err := d.pool.close()
	if d.close != nil {
		if e := d.close(); err == nil {
			err = e
		}
	}
	d.be = nil
	return err
}
