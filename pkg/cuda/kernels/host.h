// Host (CPU) definitions of the few CUDA builtins that kernels.cu uses, so
// that the kernels compile as plain C++ when NTC_HOST is defined: the
// kernel emulator (emu/emu.cpp) includes kernels.cu and runs every thread
// of a block as an OS thread. Only kernels.cu includes this file, and only
// in the host build; the device build (scripts/gen-ptx.sh) never sees it.
//
// The emulator sets, for each of its threads, the thread's indices and the
// block's barrier in ntc_emu (thread_local) before it calls a kernel.
// Compile with -ffp-contract=off so that mul_rn and add_rn round each
// operation, as their PTX does.
#ifndef NTC_KERNELS_HOST_H
#define NTC_KERNELS_HOST_H

#include <atomic>
#include <cstdint>
#include <cstring>

#define __global__
#define __device__
// A block's threads share its shared memory: a static local is shared by
// all the threads of the process, which is the same thing as long as the
// emulator runs one block at a time.
#define __shared__ static

namespace ntc_emu {

// Thread is what a kernel asks of the thread that runs it.
struct Thread {
  int tid = 0, ntid = 1;          // threadIdx.x, blockDim.x
  int bx = 0, by = 0, bz = 0;     // blockIdx
  int nbx = 1, nby = 1;           // gridDim.x, gridDim.y
  void (*sync)(void *) = nullptr; // __syncthreads, with its argument
  void *syncArg = nullptr;
};

inline thread_local Thread self;

} // namespace ntc_emu

static inline int tid() { return ntc_emu::self.tid; }
static inline int ntid() { return ntc_emu::self.ntid; }
static inline int bidx() { return ntc_emu::self.bx; }
static inline int bidy() { return ntc_emu::self.by; }
static inline int bidz() { return ntc_emu::self.bz; }
static inline int nbidx() { return ntc_emu::self.nbx; }
static inline int nbidy() { return ntc_emu::self.nby; }

static inline void __syncthreads() { ntc_emu::self.sync(ntc_emu::self.syncArg); }

// h2f is cvt.f32.f16: exact; NaNs keep their payload's top bits.
static inline float h2f(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, b;
  if (exp == 0x1f) {
    b = sign | 0x7f800000 | man << 13;
  } else if (exp != 0) {
    b = sign | (exp - 15 + 127) << 23 | man << 13;
  } else if (man == 0) {
    b = sign;
  } else { // subnormal: man * 2^-24, normalized
    int e = -14;
    while (!(man & 0x400)) {
      man <<= 1;
      e--;
    }
    b = sign | (uint32_t)(e + 127) << 23 | (man & 0x3ff) << 13;
  }
  float f;
  memcpy(&f, &b, 4);
  return f;
}

// f2h is cvt.rn.f16.f32: round to nearest, ties to even; values beyond
// the range become infinities, and NaNs the canonical NaN 0x7fff (as we
// understand the PTX instruction to do; not checked on a GPU).
static inline uint16_t f2h(float f) {
  uint32_t b;
  memcpy(&b, &f, 4);
  uint16_t sign = (uint16_t)((b >> 16) & 0x8000);
  int32_t exp = (int32_t)((b >> 23) & 0xff);
  uint32_t man = b & 0x7fffff;
  if (exp == 0xff)
    return man != 0 ? 0x7fff : (uint16_t)(sign | 0x7c00);
  int32_t e = exp - 127 + 15;
  if (e >= 0x1f)
    return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10)
      return sign; // below half the smallest subnormal
    uint32_t m = man | 0x800000, shift = (uint32_t)(14 - e);
    uint32_t half = 1u << (shift - 1), rem = m & ((1u << shift) - 1), r = m >> shift;
    if (rem > half || (rem == half && (r & 1)))
      r++;
    return (uint16_t)(sign | r);
  }
  uint32_t r = (uint32_t)e << 10 | man >> 13, rem = man & 0x1fff;
  if (rem > 0x1000 || (rem == 0x1000 && (r & 1)))
    r++; // may carry into the exponent, up to infinity
  return (uint16_t)(sign | r);
}

static inline float mul_rn(float a, float b) { return a * b; }
static inline float add_rn(float a, float b) { return a + b; }

static inline float __int_as_float(int i) {
  float f;
  memcpy(&f, &i, 4);
  return f;
}

// atomicMax returns the old value, as CUDA's does.
static inline int atomicMax(int *p, int v) {
  std::atomic_ref<int> a(*p);
  int old = a.load();
  while (old < v && !a.compare_exchange_weak(old, v)) {
  }
  return old;
}

#endif
