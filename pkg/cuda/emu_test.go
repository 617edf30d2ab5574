//go:build kernelemu

package cuda

// The kernel emulator's tests (scripts/kernel-emu.sh): the CUDA C source of
// the kernels (kernels/kernels.cu) compiled as host C++ and run on the CPU
// by kernels/emu, one OS thread per GPU thread of a block, on the device
// programs that decode_gpu.go launches (chunkProgram), checked against the
// CPU decoder. They need clang++-14, and no GPU.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ntc-project/ntc/internal/f16"
	"github.com/ntc-project/ntc/pkg/codec"
)

// emuCXXFlags are the emulator's compiler flags. Its two builds add
// sanitizers: emuAddress makes any read or write outside a buffer (each
// allocated with its exact size), and any undefined behaviour, an error;
// emuThread (ThreadSanitizer) any data race between a block's threads, in
// shared or global memory, that the barriers do not order, whether or not
// the schedule makes it change the output. NTC_EMU_SANITIZE=0 leaves the
// sanitizers out (and skips the race test).
var emuCXXFlags = []string{"-std=c++20", "-O1", "-ffp-contract=off", "-pthread", "-Wall", "-Wextra", "-Werror", "-g"}

type emuBuild int

const (
	emuAddress emuBuild = iota
	emuThread
)

var emuSanitizers = [...][]string{
	emuAddress: {"-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer"},
	emuThread:  {"-fsanitize=thread"},
}

var emu struct {
	mu   sync.Mutex
	dir  string
	bins [len(emuSanitizers)]string
}

func emuSanitize() bool { return os.Getenv("NTC_EMU_SANITIZE") != "0" }

// emuBinary compiles a build of the emulator once per test binary, or
// skips the test when there is no clang++-14.
func emuBinary(t *testing.T, build emuBuild) string {
	t.Helper()
	cxx := os.Getenv("CXX_EMU")
	if cxx == "" {
		cxx = "clang++-14"
	}
	if _, err := exec.LookPath(cxx); err != nil {
		t.Skipf("the kernel emulator needs %s (apt-get install clang-14; scripts/kernel-emu.sh does): %v", cxx, err)
	}
	emu.mu.Lock()
	defer emu.mu.Unlock()
	if emu.bins[build] != "" {
		return emu.bins[build]
	}
	// Read the sources here, so that go test's cache knows the results
	// depend on them (it does not see what clang reads).
	for _, src := range []string{"kernels/kernels.cu", "kernels/host.h", "kernels/emu/emu.cpp"} {
		if _, err := os.ReadFile(filepath.FromSlash(src)); err != nil {
			t.Fatal(err)
		}
	}
	if emu.dir == "" {
		dir, err := os.MkdirTemp("", "ntc-emu-")
		if err != nil {
			t.Fatal(err)
		}
		emu.dir = dir
	}
	bin := filepath.Join(emu.dir, fmt.Sprintf("emu%d", build))
	args := append([]string{}, emuCXXFlags...)
	if emuSanitize() {
		args = append(args, emuSanitizers[build]...)
	}
	args = append(args, "-o", bin, filepath.Join("kernels", "emu", "emu.cpp"))
	t0 := time.Now()
	if out, err := exec.Command(cxx, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", cxx, strings.Join(args, " "), err, out)
	}
	t.Logf("compiled the kernel emulator in %v: %s %s", time.Since(t0).Round(time.Millisecond), cxx, strings.Join(args, " "))
	emu.bins[build] = bin
	return bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	if emu.dir != "" {
		os.RemoveAll(emu.dir)
	}
	os.Exit(code)
}

// emuJob is a chunk's device program written for the emulator.
type emuJob struct {
	dir      string
	outBytes int64
}

// writeJob writes the device program of chunk (staged as st in data) to
// dir (see kernels/emu/emu.cpp for the format). The output, the lane's
// buffers y and q are filled with bytes that make NaNs or absurd symbols
// where a kernel does not write what it should.
func writeJob(dir string, chunk int, l codec.Layout, st codec.Staged, data []byte, f32 bool) (emuJob, error) {
	prog, err := chunkProgram(chunk, l, st, f32)
	if err != nil {
		return emuJob{}, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return emuJob{}, err
	}
	elem := int64(2)
	if f32 {
		elem = 4
	}
	job := emuJob{dir: dir, outBytes: int64(st.N) * int64(l.Values()) * elem}
	var b strings.Builder
	fmt.Fprintf(&b, "# chunk %d: kind %d, %d samples, layout %+v, f32 %v\n", chunk, st.Kind, st.N, l, f32)
	file := func(name string, v any) error {
		raw, err := binary.Append(nil, binary.LittleEndian, v)
		if err != nil {
			return err
		}
		fmt.Fprintf(&b, "buf %s %d %s.bin\n", name, len(raw), name)
		return os.WriteFile(filepath.Join(dir, name+".bin"), raw, 0o644)
	}
	fill := func(name string, n int64, v byte) { fmt.Fprintf(&b, "buf %s %d fill %02x\n", name, n, v) }
	if err := file(bufStaged.String(), data[:st.Size]); err != nil {
		return job, err
	}
	fill(bufOut.String(), job.outBytes, 0xff) // NaN, float16 or float32
	fill(bufY.String(), prog.yBytes, 0xff)    // float16 NaN
	fill(bufQ.String(), prog.qBytes, 0x7f)    // symbols near 2^31
	fill(bufErr.String(), 4, 0)
	if st.Kind == codec.DeviceNTC || st.Kind == codec.DeviceNTCStreams {
		m := st.NTC.Model
		type table struct {
			b devBuffer
			v any
		}
		tables := []table{{bufWeights, m.Weights}, {bufBlocks, m.Blocks}, {bufGroups, m.Groups}, {bufDCT, m.DCT[:]}, {bufLUT, m.LUT}}
		// The optional tables, when the model has them (a null pointer
		// otherwise).
		if len(m.PrefixMean) > 0 {
			tables = append(tables, table{bufPrefixMean, m.PrefixMean})
		}
		if len(m.ClassMul) > 0 {
			tables = append(tables, table{bufClassMul, m.ClassMul})
		}
		if p := st.NTC.Plan; p != nil {
			tables = append(tables, []table{{bufStart, p.Start}, {bufIndex, p.Index}, {bufShape, p.Shape}, {bufBucket, p.Bucket}, {bufOrder, p.Order}, {bufOrderStart, p.OrderStart}}...)
		}
		for _, tb := range tables {
			if err := file(tb.b.String(), tb.v); err != nil {
				return job, err
			}
		}
	}
	addr := func(a devAddr) string {
		if a.buf == bufNone {
			return "null"
		}
		return fmt.Sprintf("%s+%d", a.buf, a.off)
	}
	for _, s := range prog.steps {
		if c := s.gemm; c != nil {
			f := 0
			if c.outF32 {
				f = 1
			}
			fmt.Fprintf(&b, "gemm %d %d %d %s %d %d %s %d %d %s %d %d %d %d\n", c.m, c.n, c.k, addr(c.a), c.lda, c.strideA,
				addr(c.b), c.ldb, c.strideB, addr(c.c), c.ldc, c.strideC, c.batch, f)
			continue
		}
		dims := func(d Dim3) string { return fmt.Sprintf("%d %d %d", d.X, max(d.Y, 1), max(d.Z, 1)) }
		fmt.Fprintf(&b, "launch %s %s %s", s.kernel, dims(s.grid), dims(s.block))
		for _, a := range s.args {
			switch a := a.(type) {
			case devAddr:
				b.WriteString(" " + addr(a))
			case int64:
				fmt.Fprintf(&b, " %d", a)
			default:
				return job, fmt.Errorf("argument %v of %s is a %T", a, s.kernel, a)
			}
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "save %s out.bin\nsave %s err.bin\n", bufOut, bufErr)
	return job, os.WriteFile(filepath.Join(dir, "job.txt"), []byte(b.String()), 0o644)
}

// runEmu runs jobs and returns each one's output and error word.
func runEmu(t *testing.T, build emuBuild, jobs []emuJob) (outs [][]byte, errWords []int32) {
	t.Helper()
	args := make([]string, len(jobs))
	for i, j := range jobs {
		args[i] = j.dir
	}
	if build == emuThread {
		// And the blocks in the other order: a GPU runs them in any.
		args = append([]string{"-reverse"}, args...)
	}
	cmd := exec.Command(emuBinary(t, build), args...)
	// Stop at the first report, with a failing status.
	cmd.Env = append(os.Environ(), "TSAN_OPTIONS=halt_on_error=1 exitcode=66")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("emu %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	for _, j := range jobs {
		out, err := os.ReadFile(filepath.Join(j.dir, "out.bin"))
		if err != nil {
			t.Fatal(err)
		}
		if int64(len(out)) != j.outBytes {
			t.Fatalf("%s: %d output bytes, want %d", j.dir, len(out), j.outBytes)
		}
		w, err := os.ReadFile(filepath.Join(j.dir, "err.bin"))
		if err != nil || len(w) != 4 {
			t.Fatalf("%s: error word: %v (%d bytes)", j.dir, err, len(w))
		}
		outs = append(outs, out)
		errWords = append(errWords, int32(binary.LittleEndian.Uint32(w)))
	}
	return outs, errWords
}

func newBuf(n int) ([]byte, error) { return make([]byte, n), nil }

// jobDir returns the folder for a test's jobs: a temporary one, or with
// NTC_EMU_KEEP set, a folder in it that the test leaves behind (to rerun
// a job with kernels/emu by hand).
func jobDir(t *testing.T, name string) string {
	keep := os.Getenv("NTC_EMU_KEEP")
	if keep == "" {
		return t.TempDir()
	}
	dir := filepath.Join(keep, strings.NewReplacer("/", "_", " ", "_").Replace(name))
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestEmuKernels runs the device program of every chunk of every test file
// (every codec, odd layouts), float16 and float32 output, with the learned
// codec's entropy decoding on the device and on the host, and compares the
// output with the CPU decoder's (bit for bit but for the learned codec).
// The float32 runs launch ntc_synth with at most 2 blocks in y, so that
// its blocks loop over the samples, as they do on chunks of more than
// 65535 samples.
func TestEmuKernels(t *testing.T) {
	kinds, lanes, versions := emuFiles(t, emuAddress, testFiles(t), []codec.StageMode{codec.StageAuto, codec.StageHostEntropy}, []bool{false, true})
	for _, k := range []codec.DeviceKind{codec.DeviceF16, codec.DeviceFixed, codec.DeviceNTC, codec.DeviceNTCStreams} {
		if kinds[k] == 0 {
			t.Errorf("no chunk staged as device kind %d", k)
		}
	}
	// Freshly fitted models are of the current version, with prefix
	// means.
	t.Logf("learned codec chunks by model version: %v", versions)
	if versions[9] == 0 {
		t.Errorf("no chunk of a version 9 model")
	}
	t.Logf("chunks by rANS lanes: %v", lanes)
	// ntc_entropy6 ran slices of every lane count.
	for _, l := range []int{1, 8, 16} {
		if lanes[l] == 0 {
			t.Errorf("no chunk of slices of %d rANS lanes on the device", l)
		}
	}
}

// TestEmuRaces runs the learned codec's test files (the only kernels with
// shared memory and barriers) under ThreadSanitizer, both modes, float16
// output with one block per sample and float32 with blocks that loop over
// samples; and the others' once. The thread build runs every grid's
// blocks in the reverse order (emu -reverse), which must not change the
// output.
func TestEmuRaces(t *testing.T) {
	if !emuSanitize() {
		t.Skip("NTC_EMU_SANITIZE=0")
	}
	var ntc, other []testFile
	for _, f := range testFiles(t) {
		if strings.HasPrefix(f.name, "ntc/") {
			ntc = append(ntc, f)
		} else {
			other = append(other, f)
		}
	}
	emuFiles(t, emuThread, ntc, []codec.StageMode{codec.StageAuto, codec.StageHostEntropy}, []bool{false, true})
	emuFiles(t, emuThread, other, []codec.StageMode{codec.StageAuto}, []bool{false})
}

// compatDir holds the files of older formats that pkg/ntcb's golden tests
// decode (testdata/golden/compat).
var compatDir = filepath.Join("..", "..", "testdata", "golden", "compat")

// TestEmuCompat runs the device programs of the learned codec's files of
// older model and payload versions (the golden files of pkg/ntcb): model
// version 8 (int8 rows, with and without class steps, and at a high rate),
// versions 7 (class steps) and 6 (plain from bucket 20), model version 5
// (payload version 6, no prefix means: ntc_rows gets a null table) and
// model version 4 (payload versions 4 and 5), checked against the CPU
// decoder as TestEmuKernels checks fresh files.
func TestEmuCompat(t *testing.T) {
	var files []testFile
	for _, name := range []string{"ntc_model_v8", "ntc_model_v8_classsteps", "ntc_model_v8_snr36", "ntc_model_v7", "ntc_model_v6", "ntc_model_v5", "ntc_payload_v5", "ntc_payload_v4", "ntc_container_v1"} {
		data, err := os.ReadFile(filepath.Join(compatDir, name+".ntcb"))
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, openTestFile(t, "compat/"+name, data, 1e-3))
	}
	_, _, versions := emuFiles(t, emuAddress, files, []codec.StageMode{codec.StageAuto, codec.StageHostEntropy}, []bool{false, true})
	t.Logf("learned codec chunks by model version: %v", versions)
	for _, v := range []int{4, 5, 6, 7, 8} {
		if versions[v] == 0 {
			t.Errorf("no chunk of a version %d model", v)
		}
	}
}

// emuFiles runs the device program of every chunk of files, staged in
// each of modes, for each output type, with a build of the emulator, and
// checks the output. It returns how many chunks of each kind it ran, how
// many of the learned codec's chunks whose entropy decoding ran on the
// device had slices of each rANS lane count, and how many of the learned
// codec's chunks had a model of each version.
func emuFiles(t *testing.T, build emuBuild, files []testFile, modes []codec.StageMode, f32s []bool) (kinds map[codec.DeviceKind]int, lanes, versions map[int]int) {
	t.Helper()
	emuBinary(t, build)
	defer func(y int) { maxGridY = y }(maxGridY)
	kinds, lanes, versions = map[codec.DeviceKind]int{}, map[int]int{}, map[int]int{}
	for _, f := range files {
		c := f.r.Container()
		for _, mode := range modes {
			for _, f32 := range f32s {
				t0 := time.Now()
				maxGridY = 65535
				if f32 {
					maxGridY = 2
				}
				dir := jobDir(t, fmt.Sprintf("%s-build%d-mode%d-f32%v", f.name, build, mode, f32))
				var jobs []emuJob
				for i := range c.NumChunks() {
					st, buf, _, err := f.r.StageChunk(i, nil, mode, newBuf)
					if err != nil {
						t.Fatalf("%s: %v", f.name, err)
					}
					kinds[st.Kind]++
					if st.Kind == codec.DeviceNTCStreams && binary.LittleEndian.Uint32(buf[12:])>>8&0xff == 1 {
						lanes[int(buf[12])]++
					}
					if st.Kind == codec.DeviceNTC || st.Kind == codec.DeviceNTCStreams {
						m := st.NTC.Model
						versions[m.Version]++
						// (ntcProgram checks the table's length.)
						if l := f.r.Layout(); (m.Version >= 6 && l.Prefix > 0) != (len(m.PrefixMean) > 0) {
							t.Fatalf("%s chunk %d: model version %d with %d prefix mean values (layout %+v)",
								f.name, i, m.Version, len(m.PrefixMean), l)
						}
					}
					job, err := writeJob(filepath.Join(dir, fmt.Sprint(i)), i, f.r.Layout(), st, buf, f32)
					if err != nil {
						t.Fatalf("%s chunk %d: %v", f.name, i, err)
					}
					jobs = append(jobs, job)
				}
				outs, errWords := runEmu(t, build, jobs)
				for i := range c.NumChunks() {
					ch := c.Chunk(i)
					if errWords[i] != 0 {
						t.Fatalf("%s chunk %d (mode %d, f32 %v): error word %d", f.name, i, mode, f32, errWords[i])
					}
					var samples []int
					for s := range ch.Count {
						samples = append(samples, ch.First+s)
					}
					g := f
					g.name = fmt.Sprintf("%s chunk %d (mode %d, f32 %v)", f.name, i, mode, f32)
					checkDecoded(t, g, samples, outs[i], f32)
					checkPrefixExact(t, g, samples, outs[i], f32)
				}
				t.Logf("%s mode %d f32 %v: %d chunks in %v", f.name, mode, f32, c.NumChunks(), time.Since(t0).Round(time.Millisecond))
			}
		}
	}
	return kinds, lanes, versions
}

// checkPrefixExact checks that device output's prefix tokens are the CPU
// decoder's bit for bit, whatever the file's tolerance: the learned codec
// codes them as int8 rows (code times scale, rounded, plus, with a model
// of version 6, the token's prefix mean, rounded), which ntc_rows
// computes exactly as the CPU does.
func checkPrefixExact(t *testing.T, f testFile, samples []int, got []byte, f32 bool) {
	t.Helper()
	l := f.r.Layout()
	v := l.Values()
	for i, s := range samples {
		for j := range l.Prefix * l.Dim {
			w := f.want[s][j]
			var g, wb uint32
			if f32 {
				g, wb = binary.LittleEndian.Uint32(got[4*(i*v+j):]), math.Float32bits(w)
			} else {
				g, wb = uint32(binary.LittleEndian.Uint16(got[2*(i*v+j):])), uint32(f16.FromFloat32(w))
			}
			if g != wb {
				t.Fatalf("%s: output %d (sample %d) prefix value %d: device %#x, CPU %#x (%g)", f.name, i, s, j, g, wb, w)
			}
		}
	}
}

// TestEmuDamagedStreams damages the coefficient streams of staged chunks
// (after the host's checks, as a bad transfer or a staging bug would): the
// device's entropy decoder must set the error word to chunk+1 exactly when
// the reference (codec.Finish) finds the slices corrupt, and must set it
// for a byte flipped in the middle of a rANS stream and for streams one
// word or byte longer than the table says (each end-of-slice check).
func TestEmuDamagedStreams(t *testing.T) {
	emuBinary(t, emuAddress)
	f := namedFile(t, testFiles(t), "ntc/block10") // several chunks
	l := f.r.Layout()
	le := binary.LittleEndian
	type damage struct {
		name       string
		chunk      int
		edit       func(data []byte)
		mustDetect bool
	}
	flip := func(pos int) func([]byte) { return func(d []byte) { d[pos] ^= 0x5a } }
	add := func(pos, v int) func([]byte) {
		return func(d []byte) { le.PutUint32(d[pos:], uint32(int(le.Uint32(d[pos:]))+v)) }
	}
	var cases []damage
	staged := map[int][]byte{}
	stageds := map[int]codec.Staged{}
	for _, i := range []int{0, f.r.Container().NumChunks() - 1} {
		st, buf, _, err := f.r.StageChunk(i, nil, codec.StageAuto, newBuf)
		if err != nil {
			t.Fatal(err)
		}
		if st.Kind != codec.DeviceNTCStreams || st.NTC.Slices < 2 {
			t.Fatalf("chunk %d staged as kind %d with %d slices; want streams", i, st.Kind, st.NTC.Slices)
		}
		staged[i], stageds[i] = buf[:st.Size], st
		for _, si := range []int{0, st.NTC.Slices / 2, st.NTC.Slices - 1} {
			eo := st.NTC.SliceOff + 24*si
			e := buf[eo:]
			ro, rl := int(le.Uint32(e)), int(le.Uint32(e[4:]))
			bo, bl := int(le.Uint32(e[8:])), int(le.Uint32(e[12:]))
			name := func(what string) string { return fmt.Sprintf("chunk %d slice %d %s", i, si, what) }
			cases = append(cases,
				damage{name("rANS middle"), i, flip(ro + rl/2), true},
				damage{name("rANS state"), i, flip(ro + 1), false},
				damage{name("rANS last"), i, flip(ro + rl - 1), false})
			if bl > 0 {
				cases = append(cases,
					damage{name("bits middle"), i, flip(bo + bl/2), false},
					damage{name("bits last"), i, flip(bo + bl - 1), false})
			}
			if si != st.NTC.Slices-1 { // a longer stream stays inside the staged data
				cases = append(cases,
					damage{name("rANS length +2"), i, add(eo+4, 2), true},
					damage{name("bits length +1"), i, add(eo+12, 1), true})
			}
		}
	}
	dir := jobDir(t, "damaged")
	var jobs []emuJob
	var want []bool
	for ci, c := range cases {
		data := bytes.Clone(staged[c.chunk])
		c.edit(data)
		st := stageds[c.chunk]
		ref := codec.Finish(make([]float32, st.N*l.Values()), l, st, data)
		if ref != nil && !errors.Is(ref, codec.ErrCorrupt) {
			t.Fatalf("%s: reference: %v", c.name, ref)
		}
		if c.mustDetect && ref == nil {
			t.Fatalf("%s: the reference decodes the damaged chunk", c.name)
		}
		want = append(want, ref != nil)
		job, err := writeJob(filepath.Join(dir, fmt.Sprint(ci)), c.chunk, l, st, data, false)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job)
	}
	_, errWords := runEmu(t, emuAddress, jobs)
	for i, c := range cases {
		w := int32(0)
		if want[i] {
			w = int32(c.chunk + 1)
		}
		if errWords[i] != w {
			t.Errorf("%s: error word %d, want %d (reference finds it corrupt: %v)", c.name, errWords[i], w, want[i])
		}
	}
}

// TestEmuF16 checks the emulator's float16 conversions (host.h's versions
// of cvt.rn.f16.f32 and cvt.f32.f16) against internal/f16: every float32
// near a rounding boundary or on one, and every float16. A NaN converts
// to the canonical NaN 0x7fff (see host.h).
func TestEmuF16(t *testing.T) {
	bin := emuBinary(t, emuAddress)
	var in []byte
	var fs []uint32
	for hi := range uint32(1 << 19) {
		for _, lo := range []uint32{0, 1, 0xfff, 0x1000, 0x1001, 0x1fff} {
			b := hi<<13 | lo
			fs = append(fs, b)
			in = le32(in, b)
		}
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "in.bin"), in, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bin, "f16", filepath.Join(dir, "in.bin"), filepath.Join(dir, "out.bin")).CombinedOutput(); err != nil {
		t.Fatalf("emu f16: %v\n%s", err, out)
	}
	out, err := os.ReadFile(filepath.Join(dir, "out.bin"))
	if err != nil || len(out) != 2*len(fs)+4*65536 {
		t.Fatalf("emu f16: %d bytes, %v", len(out), err)
	}
	bad := 0
	for i, b := range fs {
		f := math.Float32frombits(b)
		got, want := binary.LittleEndian.Uint16(out[2*i:]), f16.FromFloat32(f)
		if f != f {
			want = 0x7fff
		}
		if got != want && bad < 10 {
			t.Errorf("f2h(%#08x = %g) = %#04x, want %#04x", b, f, got, want)
			bad++
		}
	}
	h2f := out[2*len(fs):]
	for h := range 65536 {
		got, want := binary.LittleEndian.Uint32(h2f[4*h:]), math.Float32bits(f16.ToFloat32(uint16(h)))
		gf, wf := math.Float32frombits(got), math.Float32frombits(want)
		if got != want && !(gf != gf && wf != wf) && bad < 20 {
			t.Errorf("h2f(%#04x) = %#08x, want %#08x", h, got, want)
			bad++
		}
	}
}

func le32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// TestEmuLaunchLimits checks the launch shapes of device programs of
// chunks too large to emulate against a GPU's limits (compute capability
// 8.x: grid 2^31-1 x 65535 x 65535 blocks, 1024 threads a block), as the
// emulator checks those it runs: many samples of a small layout, many
// values. It also checks that every launch passes as many arguments as
// the kernel in kernels.ptx has parameters.
func TestEmuLaunchLimits(t *testing.T) {
	ptx, err := os.ReadFile("kernels.ptx")
	if err != nil {
		t.Fatal(err)
	}
	params := map[string]int{}
	kernel := ""
	for _, line := range strings.Split(string(ptx), "\n") {
		if name, ok := strings.CutPrefix(line, ".visible .entry "); ok {
			kernel = strings.TrimSuffix(name, "(")
		} else if kernel != "" && strings.HasPrefix(strings.TrimSpace(line), ".param ") {
			params[kernel]++
		} else if strings.HasPrefix(line, ")") {
			kernel = ""
		}
	}
	if len(params) != 7 {
		t.Fatalf("kernels.ptx: parameters %v; want 7 kernels", params)
	}
	l := codec.Layout{Tokens: 5, Dim: 8, Prefix: 1, GridH: 2, GridW: 2}
	model := &codec.NTCModel{Layout: l, K: 40, KPad: 48, Blocks: make([]int32, 20), Groups: make([]int32, 18)}
	plan := &codec.NTCPlan{Entries: 10}
	for _, n := range []int{1, 65535, 65536, 70000, 1 << 22} {
		for _, st := range []codec.Staged{
			{Kind: codec.DeviceF16, N: n},
			{Kind: codec.DeviceFixed, N: n, Fixed: codec.FixedDevice{Group: 8, TokenBytes: 10}},
			{Kind: codec.DeviceNTC, N: n, NTC: codec.NTCStaged{Model: model, Plan: plan, Rows: n}},
			{Kind: codec.DeviceNTCStreams, N: n, NTC: codec.NTCStaged{Model: model, Plan: plan, Rows: n, Slices: (n + 3) / 4}},
		} {
			p, err := chunkProgram(0, l, st, false)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range p.steps {
				if s.gemm != nil {
					continue
				}
				if n, ok := params[s.kernel]; !ok || n != len(s.args) {
					t.Errorf("%s: %d arguments; kernels.ptx has %d parameters (present: %v)", s.kernel, len(s.args), n, ok)
				}
				g, b := s.grid, s.block
				if g.X < 1 || g.X > math.MaxInt32 || max(g.Y, 1) > 65535 || max(g.Z, 1) > 65535 || g.Y < 0 || g.Z < 0 ||
					b.X < 1 || b.X*max(b.Y, 1)*max(b.Z, 1) > 1024 {
					t.Errorf("kind %d, %d samples: %s on grid %+v, block %+v: beyond a GPU's limits", st.Kind, n, s.kernel, g, b)
				}
			}
		}
	}
}

// TestEmuOutliersExceptions covers what the test files do not have:
// outlier tokens (int8 rows written over the grid's tokens after the
// GEMM), with the entropy decoding on the device and on the host, and
// symbols beyond int16 (DeviceNTC's exception list), which real data
// hardly makes: staged chunks are rewritten to store some symbols as
// exceptions, with their own values (the output must not change) and with
// large ones (the output must match codec.Finish's).
func TestEmuOutliersExceptions(t *testing.T) {
	emuBinary(t, emuAddress)
	f := outlierFile(t)
	r := f.r
	l := r.Layout()
	le := binary.LittleEndian
	dir := jobDir(t, "outliers")
	type check struct {
		name    string
		f       testFile // the expected values
		samples []int
	}
	var jobs []emuJob
	var checks []check
	outliers := 0
	for i := range r.Container().NumChunks() {
		ch := r.Container().Chunk(i)
		var samples []int
		for s := range ch.Count {
			samples = append(samples, ch.First+s)
		}
		for _, mode := range []codec.StageMode{codec.StageAuto, codec.StageHostEntropy} {
			st, data, _, err := r.StageChunk(i, nil, mode, newBuf)
			if err != nil {
				t.Fatal(err)
			}
			outliers += st.NTC.Rows - st.N*l.Prefix
			name := fmt.Sprintf("chunk %d mode %d", i, mode)
			job, err := writeJob(filepath.Join(dir, fmt.Sprint(len(jobs))), i, l, st, data, false)
			if err != nil {
				t.Fatal(err)
			}
			jobs, checks = append(jobs, job), append(checks, check{name, f, samples})
			if st.Kind != codec.DeviceNTC {
				continue
			}
			// Every 37th symbol, the first and the last, as exceptions:
			// with their own values, then large ones.
			nsym := st.N * st.NTC.Plan.Entries
			for _, large := range []bool{false, true} {
				st2 := st
				var exc []byte
				for e := 0; e < nsym; e++ {
					if e%37 != 0 && e != nsym-1 {
						continue
					}
					v := int32(int16(le.Uint16(data[st.NTC.QOff+2*e:])))
					if large {
						v = 32768 + int32(e%512)
						if e%2 == 1 {
							v = -v
						}
					}
					exc = le.AppendUint32(exc, uint32(e))
					exc = le.AppendUint32(exc, uint32(v))
					st2.NTC.Exceptions++
				}
				if st.NTC.Exceptions != 0 {
					t.Fatalf("%s: the staged chunk has exceptions already", name)
				}
				data2 := append(bytes.Clone(data[:st.NTC.ExcOff]), exc...)
				for k := range st2.NTC.Exceptions {
					e := int(le.Uint32(exc[8*k:]))
					le.PutUint16(data2[st.NTC.QOff+2*e:], 0x8000) // codec.NTCEscape
				}
				le.PutUint32(data2[4:], uint32(st2.NTC.Exceptions))
				st2.Size = len(data2)
				want := f
				want.name = fmt.Sprintf("%s, %d exceptions", name, st2.NTC.Exceptions)
				if large {
					want.name += " (large)"
					vals := make([]float32, st.N*l.Values())
					if err := codec.Finish(vals, l, st2, data2); err != nil {
						t.Fatal(err)
					}
					changed := false
					want.want = make([][]float32, r.Len())
					for k, s := range samples {
						want.want[s] = vals[k*l.Values() : (k+1)*l.Values()]
						for j, v := range want.want[s] {
							if math.IsInf(float64(v), 0) || v != v {
								t.Fatalf("%s: the reference makes %g", want.name, v)
							}
							changed = changed || v != f.want[s][j]
						}
					}
					if !changed {
						t.Fatalf("%s: the large symbols change nothing", want.name)
					}
				}
				job, err := writeJob(filepath.Join(dir, fmt.Sprint(len(jobs))), i, l, st2, data2, false)
				if err != nil {
					t.Fatal(err)
				}
				jobs, checks = append(jobs, job), append(checks, check{want.name, want, samples})
			}
		}
	}
	if outliers == 0 {
		t.Fatal("no outlier tokens in the test file")
	}
	outs, errWords := runEmu(t, emuAddress, jobs)
	for i, c := range checks {
		if errWords[i] != 0 {
			t.Errorf("%s: error word %d", c.name, errWords[i])
		}
		g := c.f
		g.name = c.name
		checkDecoded(t, g, c.samples, outs[i], false)
	}
	t.Logf("%d jobs, %d outlier tokens", len(jobs), outliers/2)
}
