// emu runs the kernels of pkg/cuda/kernels/kernels.cu on the CPU: the
// kernels' own source, compiled as host C++ (NTC_HOST, with the builtins of
// ../host.h), every block's threads run as OS threads that share the
// block's shared memory and meet at a std::barrier for __syncthreads. It
// executes jobs that pkg/cuda's emulator test (emu_test.go) writes: the
// device program of one staged chunk, as decode_gpu.go runs it on a GPU
// (chunkProgram in program.go), with the cuBLAS GEMM done by a plain loop.
//
// Build (scripts/kernel-emu.sh, through the test, which builds it twice:
// with -fsanitize=address,undefined, and with -fsanitize=thread):
//
//   clang++-14 -std=c++20 -O1 -ffp-contract=off -pthread -o emu emu.cpp
//
// -ffp-contract=off keeps the multiplications and additions that the
// kernels write as mul_rn and add_rn separate (and, unlike the device
// build, every other one too: see "Fidelity" below).
//
// Usage:
//
//   emu JOBDIR...        run each job (JOBDIR/job.txt)
//   emu -reverse JOBDIR...
//                        ... running every grid's blocks in the reverse
//                        order
//   emu f16 IN OUT       write f2h of every float32 of IN to OUT, then
//                        h2f of the 65536 float16 patterns after them
//
// A job is a text file of commands, one a line, run in order, with the
// files it names in the same directory (all data little-endian):
//
//   buf NAME SIZE FILE       a device buffer of SIZE bytes, read from FILE
//                            (exactly SIZE bytes); SIZE 0 is a null pointer
//   buf NAME SIZE fill XX    a buffer of SIZE bytes, every byte XX (hex)
//   launch KERNEL GX GY GZ BX BY BZ ARG...
//                            a kernel launch; an ARG is NAME+OFFSET (an
//                            address in a buffer, OFFSET bytes in), null,
//                            or an integer
//   gemm M N K A LDA SA B LDB SB C LDC SC BATCH F32
//                            BLAS.GemmF16: for each batch item i, the
//                            row-major C_i[M,N] = A_i[M,K] B_i[K,N], with A,
//                            B float16 (addresses as for launch), products
//                            summed in float32 in order of K, C float32
//                            when F32 is 1, else float16 (round to nearest
//                            even); SA, SB, SC are the strides in elements
//   save NAME FILE           write the buffer to FILE
//
// Buffers are allocated with their exact sizes, so that a build with
// -fsanitize=address catches any read or write outside them. Any error (a
// bad job, an argument of the wrong kind for a kernel, a launch shape a GPU
// refuses, threads of a block that do not meet at the same __syncthreads)
// stops the program with a message on stderr and exit status 2.
//
// Fidelity. What runs is the kernels' C++ source, not their PTX: the
// emulator checks the logic (indexing, the launch shapes and arguments
// that decode_gpu.go passes, __syncthreads placement, bounds), not what
// clang or the driver make of it. In particular:
//   - Blocks run one at a time, their threads interleaved as the OS
//     schedules them. A race between a block's threads changes the output
//     only when the schedule hits it; ThreadSanitizer (the thread build)
//     reports it whenever the barriers leave two accesses unordered.
//     Blocks never race here, each ends before the next starts; an output
//     that depends on their order shows when -reverse changes it (the
//     thread build's test runs that way). There are no warps: code that
//     relies on warp-synchronous execution, or on blocks running at the
//     same time, is not modelled.
//   - Floating point: mul_rn, add_rn, h2f and f2h are exact equivalents of
//     their PTX (TestEmuF16 checks the conversions against internal/f16;
//     a NaN converts to 0x7fff, the canonical NaN, which is what we
//     understand cvt.rn.f16.f32 to make: unchecked, and no valid data
//     converts a NaN). The device build
//     contracts other a*b+c into FMAs (clang's default for CUDA), the
//     emulator does not: ntc_synth's inverse DCT sums may differ in their
//     last bits, as they may from the CPU decoder's.
//   - The GEMM sums in order of K in float32; cuBLAS (tensor cores) sums
//     in its own order, so its float16 or float32 results may differ in
//     their last bits. Whether cuBLAS accepts the call is checked as
//     BLAS.GemmF16 checks it, not as cuBLAS does.
//   - Not modelled at all: PTX and the driver's JIT (inline asm, register
//     use, the 48 KiB of static shared memory), alignment beyond what
//     UBSan checks for the types read, memory coalescing and speed,
//     streams, asynchronous copies and several lanes at once (the host
//     pipeline has its own CPU tests), and real device memory, which is
//     larger than the exact-size buffers here (a read past a buffer's end
//     is an error here, garbage on a GPU).

#define NTC_HOST 1
#include "../kernels.cu"

#include <algorithm>
#include <barrier>
#include <cerrno>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

[[noreturn]] static void fail(const char *format, ...) {
  va_list ap;
  va_start(ap, format);
  fprintf(stderr, "emu: ");
  vfprintf(stderr, format, ap);
  fprintf(stderr, "\n");
  va_end(ap);
  fflush(stderr);
  _exit(2);
}

// ---- Kernels ----

// Arg is one 8-byte launch slot: a pointer or an integer.
struct Arg {
  bool ptr;
  void *p;
  i64 i;
};

#define P(n) (a[n].p)
#define I(n) (a[n].i)

// KernelDef describes a kernel of kernels.cu: its parameters (p pointer,
// i integer) and a call with them.
struct KernelDef {
  const char *sig;
  void (*call)(const Arg *a);
};

static const std::map<std::string, KernelDef> kernels = {
    {"f16_unshuffle", {"ppii", [](const Arg *a) { f16_unshuffle((const u8 *)P(0), P(1), I(2), I(3)); }}},
    {"fixed_dequant", {"ppiiiiii", [](const Arg *a) {
                         fixed_dequant((const u8 *)P(0), P(1), I(2), I(3), I(4), I(5), I(6), I(7));
                       }}},
    {"ntc_synth", {"pppppppppp" "iiiiiii", [](const Arg *a) {
                     ntc_synth((const u8 *)P(0), (const int *)P(1), (const int *)P(2), (const float *)P(3),
                               (const int *)P(4), (const int *)P(5), (const int *)P(6), (const u8 *)P(7),
                               (const float *)P(8), (u16 *)P(9), I(10), I(11), I(12), I(13), I(14), I(15), I(16));
                   }}},
    {"ntc_synth32", {"ppppppppppp" "iiiii", [](const Arg *a) {
                       ntc_synth32((const u8 *)P(0), (const int *)P(1), (const int *)P(2), (const int *)P(3),
                                   (const float *)P(4), (const int *)P(5), (const int *)P(6), (const int *)P(7),
                                   (const u8 *)P(8), (const float *)P(9), (u16 *)P(10), I(11), I(12), I(13), I(14),
                                   I(15));
                     }}},
    {"ntc_entropy", {"ppppppppp" "iiiii", [](const Arg *a) {
                       ntc_entropy((const u8 *)P(0), (int *)P(1), (const unsigned *)P(2), (const int *)P(3),
                                   (const int *)P(4), (const int *)P(5), (const int *)P(6), (const u8 *)P(7),
                                   (int *)P(8), I(9), I(10), I(11), I(12), I(13));
                     }}},
    {"ntc_entropy6", {"ppppppppp" "iiiii", [](const Arg *a) {
                        ntc_entropy6((const u8 *)P(0), (int *)P(1), (const unsigned *)P(2), (const int *)P(3),
                                     (const int *)P(4), (const int *)P(5), (const int *)P(6), (const u8 *)P(7),
                                     (int *)P(8), I(9), I(10), I(11), I(12), I(13));
                      }}},
    {"ntc_rows", {"ppp" "iiiiii", [](const Arg *a) {
                    ntc_rows((const u8 *)P(0), P(1), (const u16 *)P(2), I(3), I(4), I(5), I(6), I(7), I(8));
                  }}},
};

// ---- Launches ----

struct Dim3 {
  long long x = 1, y = 1, z = 1;
};

// Block is the state that a launch's threads share.
struct Block {
  int n;                   // threads
  std::vector<long> where; // per thread, at a barrier: its __syncthreads count, or -1 at the block's end
  long long bx = 0, by = 0, bz = 0;
  const char *kernel;
};

// Meet checks, when all threads reach a barrier, that they reached the
// same one: the same __syncthreads, or all the end of the block.
struct Meet {
  Block *b;
  void operator()() noexcept {
    for (int t = 1; t < b->n; t++) {
      if (b->where[t] != b->where[0]) {
        auto at = [](long w) { return w < 0 ? std::string("the end of the kernel") : "__syncthreads #" + std::to_string(w); };
        fail("%s: block (%lld,%lld,%lld): thread 0 waits at %s, thread %d at %s (a __syncthreads that not every "
             "thread of the block reaches hangs or misbehaves on a GPU)",
             b->kernel, b->bx, b->by, b->bz, at(b->where[0]).c_str(), t, at(b->where[t]).c_str());
      }
    }
  }
};

// reverseBlocks runs a grid's blocks in the reverse order (-reverse): a
// GPU runs them in any order, and the output must not depend on it.
static bool reverseBlocks;

// Launch is a kernel launch for a pool's threads.
struct Launch {
  const KernelDef *k;
  Dim3 grid;
  const Arg *args;
};

// Pool is n threads that run the blocks of launches of n threads each,
// one block after another; they live as long as the program, so that a
// launch does not start threads.
struct Pool {
  Block block;
  std::barrier<Meet> bar; // the block's barrier (__syncthreads, the block's end)
  std::barrier<> gate;    // the threads and the main thread, at a launch's start and end
  const Launch *job = nullptr;
  bool quit = false;
  std::vector<std::thread> ts;

  explicit Pool(int n) : bar(n, Meet{&block}), gate(n + 1) {
    block.n = n;
    block.where.assign(n, 0);
    for (int t = 0; t < n; t++)
      ts.emplace_back(&Pool::work, this, t);
  }

  ~Pool() {
    quit = true;
    gate.arrive_and_wait();
    for (auto &th : ts)
      th.join();
  }

  void run(const char *kernel, const Launch &l) {
    block.kernel = kernel;
    job = &l;
    gate.arrive_and_wait(); // go
    gate.arrive_and_wait(); // done
  }

  void work(int t) {
    ntc_emu::self = ntc_emu::Thread{};
    ntc_emu::self.tid = t;
    ntc_emu::self.ntid = block.n;
    ntc_emu::self.sync = syncThreads;
    ntc_emu::self.syncArg = this;
    for (;;) {
      gate.arrive_and_wait();
      if (quit)
        return;
      const Launch &l = *job;
      ntc_emu::self.nbx = (int)l.grid.x;
      ntc_emu::self.nby = (int)l.grid.y;
      for (long long zz = 0; zz < l.grid.z; zz++)
        for (long long yy = 0; yy < l.grid.y; yy++)
          for (long long xx = 0; xx < l.grid.x; xx++) {
            long long x = xx, y = yy, z = zz;
            if (reverseBlocks) {
              x = l.grid.x - 1 - xx;
              y = l.grid.y - 1 - yy;
              z = l.grid.z - 1 - zz;
            }
            // Thread 0 sets the block's indices for Meet's messages,
            // which read them once every thread has reached a barrier.
            if (t == 0) {
              block.bx = x;
              block.by = y;
              block.bz = z;
            }
            ntc_emu::self.bx = (int)x;
            ntc_emu::self.by = (int)y;
            ntc_emu::self.bz = (int)z;
            syncs = 0;
            l.k->call(l.args);
            // The block ends when all its threads have; then the next
            // one starts.
            block.where[t] = -1;
            bar.arrive_and_wait();
          }
      gate.arrive_and_wait();
    }
  }

  static thread_local long syncs; // __syncthreads calls in this block

  static void syncThreads(void *arg) {
    Pool *p = (Pool *)arg;
    p->block.where[ntc_emu::self.tid] = ++syncs;
    p->bar.arrive_and_wait();
  }
};

thread_local long Pool::syncs;

static std::map<int, std::unique_ptr<Pool>> pools; // by threads

// launch runs k on grid x block threads: one block after another, each
// with block.x threads at once.
static void launch(const std::string &name, const KernelDef &k, Dim3 grid, Dim3 block, const std::vector<Arg> &args) {
  // The limits of CUDA devices of compute capability 8.x.
  if (grid.x < 1 || grid.x > 2147483647 || grid.y < 1 || grid.y > 65535 || grid.z < 1 || grid.z > 65535)
    fail("%s: grid %lldx%lldx%lld is beyond the device's limits", name.c_str(), grid.x, grid.y, grid.z);
  if (block.x < 1 || block.y < 1 || block.z < 1 || block.x * block.y * block.z > 1024 || block.z > 64)
    fail("%s: block %lldx%lldx%lld is beyond the device's limits", name.c_str(), block.x, block.y, block.z);
  if (block.y != 1 || block.z != 1)
    fail("%s: block %lldx%lldx%lld: the kernels use threadIdx.x only", name.c_str(), block.x, block.y, block.z);
  auto &p = pools[(int)block.x];
  if (!p)
    p = std::make_unique<Pool>((int)block.x);
  Launch l{&k, grid, args.data()};
  p->run(name.c_str(), l);
}

// ---- Jobs ----

struct Buf {
  size_t size;
  unsigned char *p; // nullptr when size is 0
};

static std::map<std::string, Buf> bufs;

static void freeBufs() {
  for (auto &kv : bufs)
    free(kv.second.p);
  bufs.clear();
}

static long long parseInt(const std::string &s, const char *what) {
  char *end;
  errno = 0;
  long long v = strtoll(s.c_str(), &end, 0);
  if (s.empty() || *end || errno)
    fail("bad %s %s", what, s.c_str());
  return v;
}

// address resolves NAME+OFFSET (or null) to a pointer, with the buffer's
// bytes from there.
static unsigned char *address(const std::string &s, size_t *left) {
  if (s == "null") {
    *left = 0;
    return nullptr;
  }
  size_t plus = s.find('+');
  if (plus == std::string::npos)
    fail("address %s: want NAME+OFFSET", s.c_str());
  auto it = bufs.find(s.substr(0, plus));
  if (it == bufs.end())
    fail("address %s: no such buffer", s.c_str());
  long long off = parseInt(s.substr(plus + 1), "offset");
  if (off < 0 || (size_t)off > it->second.size || (it->second.p == nullptr && off != 0))
    fail("address %s: offset outside the buffer of %zu bytes", s.c_str(), it->second.size);
  *left = it->second.size - off;
  return it->second.p ? it->second.p + off : nullptr;
}

static std::vector<unsigned char> readFile(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f)
    fail("cannot read %s", path.c_str());
  return std::vector<unsigned char>(std::istreambuf_iterator<char>(f), {});
}

static void writeFile(const std::string &path, const void *p, size_t n) {
  FILE *f = fopen(path.c_str(), "wb");
  if (!f || (n > 0 && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
    fail("cannot write %s", path.c_str());
}

// gemm is BLAS.GemmF16 with alpha 1 and beta 0, checked as gemmShape
// (blas.go) checks it, and against the buffers' sizes.
static void gemm(const std::vector<std::string> &w) {
  if (w.size() != 15)
    fail("gemm: want 14 operands, have %zu", w.size() - 1);
  long long m = parseInt(w[1], "m"), n = parseInt(w[2], "n"), k = parseInt(w[3], "k");
  size_t la, lb, lc;
  const u16 *A = (const u16 *)address(w[4], &la), *B = (const u16 *)address(w[7], &lb);
  unsigned char *C = address(w[10], &lc);
  long long lda = parseInt(w[5], "lda"), sa = parseInt(w[6], "strideA");
  long long ldb = parseInt(w[8], "ldb"), sb = parseInt(w[9], "strideB");
  long long ldc = parseInt(w[11], "ldc"), sc = parseInt(w[12], "strideC");
  long long batch = parseInt(w[13], "batch"), f32 = parseInt(w[14], "f32");
  for (long long v : {m, n, k, lda, ldb, ldc, batch})
    if (v < 0 || v > 2147483647)
      fail("gemm: sizes must be in [0, 2^31)");
  if (k == 0 || lda < k || ldb < std::max(n, 1LL) || ldc < std::max(n, 1LL) || sa < 0 || sb < 0 || sc < 0 ||
      (batch > 1 && m > 0 && n > 0 && sc < (m - 1) * ldc + n))
    fail("gemm: m %lld n %lld k %lld lda %lld ldb %lld ldc %lld batch %lld: refused by GemmF16", m, n, k, lda, ldb,
         ldc, batch);
  if (m == 0 || n == 0 || batch == 0)
    return;
  if (batch == 1) // cublasGemmEx: no strides
    sa = sb = sc = 0;
  long long es = f32 ? 4 : 2;
  // The last element each operand touches.
  if ((size_t)((batch - 1) * sa + (m - 1) * lda + k) * 2 > la)
    fail("gemm: A reads past its buffer");
  if ((size_t)((batch - 1) * sb + (k - 1) * ldb + n) * 2 > lb)
    fail("gemm: B reads past its buffer");
  if ((size_t)((batch - 1) * sc + (m - 1) * ldc + n) * es > lc)
    fail("gemm: C writes past its buffer");
  for (long long b = 0; b < batch; b++)
    for (long long i = 0; i < m; i++)
      for (long long j = 0; j < n; j++) {
        float acc = 0.0f;
        for (long long kk = 0; kk < k; kk++)
          acc += h2f(A[b * sa + i * lda + kk]) * h2f(B[b * sb + kk * ldb + j]);
        long long e = b * sc + i * ldc + j;
        if (f32)
          memcpy(C + 4 * e, &acc, 4);
        else {
          u16 h = f2h(acc);
          memcpy(C + 2 * e, &h, 2);
        }
      }
}

static void runJob(const std::string &dir) {
  std::ifstream f(dir + "/job.txt");
  if (!f)
    fail("cannot read %s/job.txt", dir.c_str());
  std::string line;
  int ln = 0;
  while (std::getline(f, line)) {
    ln++;
    std::istringstream ls(line);
    std::vector<std::string> w;
    for (std::string s; ls >> s;)
      w.push_back(s);
    if (w.empty() || w[0][0] == '#')
      continue;
    if (w[0] == "buf") {
      if (w.size() != 4 && !(w.size() == 5 && w[3] == "fill"))
        fail("%s/job.txt:%d: buf NAME SIZE FILE | buf NAME SIZE fill XX", dir.c_str(), ln);
      long long size = parseInt(w[2], "size");
      if (size < 0 || bufs.count(w[1]))
        fail("%s/job.txt:%d: bad or repeated buffer", dir.c_str(), ln);
      Buf b{(size_t)size, size > 0 ? (unsigned char *)malloc(size) : nullptr};
      if (w.size() == 5) {
        if (size > 0)
          memset(b.p, (int)parseInt("0x" + w[4], "fill byte"), size);
      } else {
        auto data = readFile(dir + "/" + w[3]);
        if ((long long)data.size() != size)
          fail("%s/job.txt:%d: %s has %zu bytes, want %lld", dir.c_str(), ln, w[3].c_str(), data.size(), size);
        if (size > 0)
          memcpy(b.p, data.data(), size);
      }
      bufs[w[1]] = b;
    } else if (w[0] == "launch") {
      if (w.size() < 8)
        fail("%s/job.txt:%d: launch KERNEL GX GY GZ BX BY BZ ARG...", dir.c_str(), ln);
      auto it = kernels.find(w[1]);
      if (it == kernels.end())
        fail("%s/job.txt:%d: no kernel %s", dir.c_str(), ln, w[1].c_str());
      const KernelDef &k = it->second;
      Dim3 grid{parseInt(w[2], "grid"), parseInt(w[3], "grid"), parseInt(w[4], "grid")};
      Dim3 block{parseInt(w[5], "block"), parseInt(w[6], "block"), parseInt(w[7], "block")};
      std::vector<Arg> args;
      for (size_t i = 8; i < w.size(); i++) {
        bool ptr = w[i] == "null" || w[i].find('+') != std::string::npos;
        Arg a{ptr, nullptr, 0};
        size_t left;
        if (ptr)
          a.p = address(w[i], &left);
        else
          a.i = parseInt(w[i], "argument");
        args.push_back(a);
      }
      std::string sig;
      for (auto &a : args)
        sig += a.ptr ? 'p' : 'i';
      if (sig != k.sig)
        fail("%s/job.txt:%d: %s takes arguments %s (p pointer, i integer), given %s", dir.c_str(), ln, w[1].c_str(),
             k.sig, sig.c_str());
      launch(w[1], k, grid, block, args);
    } else if (w[0] == "gemm") {
      gemm(w);
    } else if (w[0] == "save") {
      auto it = bufs.find(w.size() == 3 ? w[1] : "");
      if (it == bufs.end())
        fail("%s/job.txt:%d: save NAME FILE of a buffer", dir.c_str(), ln);
      writeFile(dir + "/" + w[2], it->second.p, it->second.size);
    } else {
      fail("%s/job.txt:%d: unknown command %s", dir.c_str(), ln, w[0].c_str());
    }
  }
  freeBufs();
}

// f16 converts with the emulated cvt instructions, for the test to check
// them against pkg/cuda's reference (internal/f16).
static void f16(const std::string &in, const std::string &out) {
  auto data = readFile(in);
  std::vector<unsigned char> o;
  for (size_t i = 0; i + 4 <= data.size(); i += 4) {
    float f;
    memcpy(&f, &data[i], 4);
    u16 h = f2h(f);
    o.push_back(h & 0xff);
    o.push_back(h >> 8);
  }
  for (unsigned h = 0; h < 65536; h++) {
    float f = h2f((u16)h);
    unsigned char b[4];
    memcpy(b, &f, 4);
    o.insert(o.end(), b, b + 4);
  }
  writeFile(out, o.data(), o.size());
}

int main(int argc, char **argv) {
  if (argc == 4 && std::string(argv[1]) == "f16") {
    f16(argv[2], argv[3]);
    return 0;
  }
  int i = 1;
  if (argc > 1 && std::string(argv[1]) == "-reverse") {
    reverseBlocks = true;
    i++;
  }
  if (i >= argc) {
    fprintf(stderr, "usage: emu [-reverse] JOBDIR... | emu f16 IN OUT\n");
    return 2;
  }
  for (; i < argc; i++)
    runJob(argv[i]);
  pools.clear();
  return 0;
}
