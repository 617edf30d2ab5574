// Device programs that finish chunks staged by pkg/codec (see
// pkg/codec/stage.go for the data they read, and the Go reference of every
// program in pkg/codec/stage_test.go, which these kernels follow step by
// step). Compiled to PTX by scripts/gen-ptx.sh with clang, without the CUDA
// headers: the few builtins needed are defined below. Every kernel
// parameter is 64 bits wide (a pointer or a long long), so that each fills
// exactly one 8-byte launch slot.
//
// With NTC_HOST defined, the file compiles as host C++ instead, with the
// builtins of host.h: the kernel emulator (emu/emu.cpp, run by
// scripts/kernel-emu.sh) runs the kernels on the CPU that way.

typedef unsigned char u8;
typedef unsigned short u16;
typedef long long i64;

#ifdef NTC_HOST
#include "host.h"
#else
#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))

__device__ static inline int tid() { return __nvvm_read_ptx_sreg_tid_x(); }
__device__ static inline int ntid() { return __nvvm_read_ptx_sreg_ntid_x(); }
__device__ static inline int bidx() { return __nvvm_read_ptx_sreg_ctaid_x(); }
__device__ static inline int bidy() { return __nvvm_read_ptx_sreg_ctaid_y(); }
__device__ static inline int bidz() { return __nvvm_read_ptx_sreg_ctaid_z(); }
__device__ static inline int nbidx() { return __nvvm_read_ptx_sreg_nctaid_x(); }
__device__ static inline int nbidy() { return __nvvm_read_ptx_sreg_nctaid_y(); }

__device__ static inline float h2f(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ static inline u16 f2h(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Multiplication and addition rounded separately, as the CPU decoder does
// them (no fused multiply-add where results must match bit for bit).
__device__ static inline float mul_rn(float a, float b) {
  float r;
  asm("mul.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

__device__ static inline float add_rn(float a, float b) {
  float r;
  asm("add.rn.f32 %0, %1, %2;" : "=f"(r) : "f"(a), "f"(b));
  return r;
}

__device__ static inline float __int_as_float(int i) {
  float f;
  asm("mov.b32 %0, %1;" : "=f"(f) : "r"(i));
  return f;
}

__device__ static inline int atomicMax(int *p, int v) { return __nvvm_atom_max_gen_i(p, v); }
#endif

__device__ static inline u16 ld16(const u8 *p) { return (u16)(p[0] | p[1] << 8); }

__device__ static inline void store(void *out, i64 i, float v, i64 f32) {
  if (f32)
    ((float *)out)[i] = v;
  else
    ((u16 *)out)[i] = f2h(v);
}

// Grid-stride loop over [0, n).
#define FOR_ALL(i, n) for (i64 i = (i64)bidx() * ntid() + tid(); i < (n); i += (i64)nbidx() * ntid())

// f16_unshuffle: DeviceF16. data holds the nv low bytes, then the nv high
// bytes.
extern "C" __global__ void f16_unshuffle(const u8 *data, void *out, i64 nv, i64 f32) {
  FOR_ALL(i, nv) {
    u16 h = (u16)(data[i] | data[nv + i] << 8);
    if (f32)
      ((float *)out)[i] = h2f(h);
    else
      ((u16 *)out)[i] = h;
  }
}

// e4m3 returns the value of an OCP FP8 E4M3 byte, 0 for NaN patterns.
__device__ static inline float e4m3(u8 b) {
  int e = (b >> 3) & 15, m = b & 7;
  float v;
  if (e == 15 && m == 7)
    v = 0.0f;
  else if (e == 0)
    v = (float)m * 0.001953125f; // m/8 * 2^-6
  else
    v = (1.0f + (float)m * 0.125f) * __int_as_float((e - 7 + 127) << 23); // times 2^(e-7), exact
  return (b & 0x80) ? -v : v;
}

// fixed_dequant: DeviceFixed. format 0 int8, 1 fp8 e4m3, 2 int4.
extern "C" __global__ void fixed_dequant(const u8 *data, void *out, i64 ntok, i64 dim, i64 group,
                                         i64 tokenBytes, i64 format, i64 f32) {
  i64 gbytes = 2 + (format == 2 ? (group + 1) / 2 : group);
  FOR_ALL(i, ntok * dim) {
    i64 tok = i / dim, d = i - tok * dim;
    i64 g = d / group, j = d - g * group;
    const u8 *p = data + 1 + tok * tokenBytes + g * gbytes;
    float scale = h2f(ld16(p));
    float v;
    if (format == 0) {
      v = (float)(signed char)p[2 + j];
    } else if (format == 1) {
      v = e4m3(p[2 + j]);
    } else {
      u8 b = p[2 + j / 2];
      v = (float)((j & 1) ? ((signed char)b >> 4) : ((signed char)(b << 4) >> 4));
    }
    store(out, i, mul_rn(v, scale), f32);
  }
}

// ntcKT is the number of columns one block of ntc_synth handles, with
// ntcThreads threads (the launch must use exactly that many).
#define ntcKT 32
#define ntcThreads 256
#define ntcPer (16 * ntcKT / ntcThreads)

// exception returns the value of symbol e, which is in the exception list:
// n pairs (uint32 index, int32 value) in increasing order of index.
__device__ static int exception(const u8 *exc, int n, i64 e) {
  const unsigned *p = (const unsigned *)exc;
  int lo = 0, hi = n;
  while (lo < hi) {
    int mid = (lo + hi) / 2;
    if ((i64)p[2 * mid] < e)
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo < n ? (int)p[2 * lo + 1] : 0;
}

// synth: the step of DeviceNTC (and DeviceNTCStreams) after the symbols.
// One block per (group of blocks, samples, tile of ntcKT columns of the
// coefficient matrix): for each of the N samples bidy(), bidy()+nbidy(),
// ... (a grid has at most 65535 blocks in y), dequantize the group's
// symbols, inverse DCT of the DCs across the group, inverse DCT of every
// block, and write the grid tokens' coefficients (then a 1 for the mean,
// then zeros up to KP) as float16 rows of y, G rows per sample. The
// symbols are the staged int16 ones with their exceptions, or (wide) the
// int32 ones ntc_entropy wrote. cmul, for a model of version 7 (null
// before), holds the step multiplier of every coefficient of a sample:
// coefficient u*K + k of block b at cmul[(b*16 + u)*K + k].
template <bool wide>
__device__ static void synth(const u8 *st, const int *q32, const int *blocks, const int *groups, const float *dct,
                             const int *start, const int *index, const int *shape, const u8 *bucket, const float *cmul,
                             u16 *y, i64 K, i64 KP, i64 entries, i64 G, i64 N, i64 qoff, i64 excoff) {
  __shared__ float c[16 * 16 * ntcKT]; // [position in group][u][column]
  const int *gr = groups + (i64)bidx() * 18;
  const i64 k0 = (i64)bidz() * ntcKT;
  const int gh = gr[0], gw = gr[1];
  const float step = *(const float *)st;
  const int nexc = *(const int *)(st + 4);
  const unsigned coding = *(const unsigned *)(st + 12);
  const bool dq = ((coding >> 8) & 0xff) == 1;
  const int pb = (int)((coding >> 16) & 0xff); // the first plain bucket
  const float *recon = (const float *)(st + 16);
  const short *q = (const short *)(st + qoff);
  const int nt = ntcThreads;

  // The same samples for all the block's threads: they all reach every
  // __syncthreads.
  for (i64 s = bidy(); s < N; s += nbidy()) {
    // Dequantize.
    for (int i = tid(); i < 16 * 16 * ntcKT; i += nt) {
      int kk = i % ntcKT, u = (i / ntcKT) % 16, p = i / (16 * ntcKT);
      i64 k = k0 + kk;
      float v = 0.0f;
      int b = gr[2 + p];
      if (b >= 0 && k < K) {
        int sh = shape[b];
        if (sh >= 0) {
          i64 mi = ((i64)sh * 16 + u) * K + k;
          int j = index[mi];
          if (j >= 0) {
            i64 e = s * entries + start[b] + j;
            int qv;
            if (wide) {
              qv = q32[e];
            } else {
              qv = q[e];
              if (qv == -32768)
                qv = exception(st + excoff, nexc, e);
            }
            int mag = qv < 0 ? -qv : qv;
            int b = bucket[mi];
            // Version 6 trellis buckets (below the first plain bucket): the
            // level of magnitude M with quantizer q is 2M-q
            // (pkg/codec/stage.go).
            int qz = 0, M = mag;
            if (dq && b < pb) {
              qz = mag & 1;
              M = (mag + qz) >> 1;
            }
            v = mul_rn(add_rn((float)mag, recon[b * 8 + qz * 4 + (M < 3 ? M : 3)]), step);
            if (qv < 0)
              v = -v;
            if (cmul)
              v = mul_rn(v, cmul[((i64)gr[2 + p] * 16 + u) * K + k]);
          }
        }
      }
      c[i] = v;
    }
    __syncthreads();

    // Inverse DCT of the DC coefficients (u = 0) across the group: each
    // thread computes ntcPer values, then all write them back.
    float r[ntcPer];
#pragma unroll
    for (int t = 0; t < ntcPer; t++) {
      int i = tid() + t * ntcThreads;
      int kk = i % ntcKT, p = i / ntcKT, a = p / 4, bb = p % 4;
      float v = 0.0f;
      if (a < gh && bb < gw) {
        for (int ii = 0; ii < gh; ii++)
          for (int jj = 0; jj < gw; jj++)
            v += dct[(gh * 4 + ii) * 4 + a] * dct[(gw * 4 + jj) * 4 + bb] * c[((ii * 4 + jj) * 16) * ntcKT + kk];
      }
      r[t] = v;
    }
    __syncthreads();
#pragma unroll
    for (int t = 0; t < ntcPer; t++) {
      int i = tid() + t * ntcThreads;
      c[((i / ntcKT) * 16) * ntcKT + i % ntcKT] = r[t];
    }
    __syncthreads();

    // Inverse DCT of every block, written as rows of y.
    for (int i = tid(); i < 16 * 16 * ntcKT; i += nt) {
      int kk = i % ntcKT, pos = (i / ntcKT) % 16, p = i / (16 * ntcKT);
      i64 k = k0 + kk;
      int b = gr[2 + p];
      if (b < 0 || k >= KP)
        continue;
      const int *bl = blocks + (i64)b * 20;
      int tok = bl[4 + pos];
      if (tok < 0)
        continue;
      float v;
      if (k < K) {
        int bh = bl[0], bw = bl[1], py = pos / 4, px = pos % 4;
        v = 0.0f;
        for (int fy = 0; fy < bh; fy++)
          for (int fx = 0; fx < bw; fx++)
            v += dct[(bh * 4 + fy) * 4 + py] * dct[(bw * 4 + fx) * 4 + px] * c[(p * 16 + fy * 4 + fx) * ntcKT + kk];
      } else {
        v = k == K ? 1.0f : 0.0f;
      }
      y[(s * G + tok) * KP + k] = f2h(v);
    }
    // The next sample's dequantization overwrites c.
    __syncthreads();
  }
}

extern "C" __global__ void ntc_synth(const u8 *st, const int *blocks, const int *groups, const float *dct,
                                     const int *start, const int *index, const int *shape, const u8 *bucket,
                                     const float *cmul, u16 *y, i64 K, i64 KP, i64 entries, i64 G, i64 N, i64 qoff,
                                     i64 excoff) {
  synth<false>(st, 0, blocks, groups, dct, start, index, shape, bucket, cmul, y, K, KP, entries, G, N, qoff, excoff);
}

extern "C" __global__ void ntc_synth32(const u8 *st, const int *q32, const int *blocks, const int *groups,
                                       const float *dct, const int *start, const int *index, const int *shape,
                                       const u8 *bucket, const float *cmul, u16 *y, i64 K, i64 KP, i64 entries,
                                       i64 G, i64 N) {
  synth<true>(st, q32, blocks, groups, dct, start, index, shape, bucket, cmul, y, K, KP, entries, G, N, 0, 0);
}

// ntc_entropy: the first step of DeviceNTCStreams. One thread per slice
// decodes the symbols of its blocks (a run of the chunk's blocks in coding
// order: sample by sample, block by block) into q32 (Plan order), as
// pkg/codec's rANS decoder does: two
// interleaved rANS states over 16-bit words, then for each symbol its
// escape, low bits and sign from the raw bit stream. A slice that does not
// decode to its exact end sets *err to at least chunk+1.
extern "C" __global__ void ntc_entropy(const u8 *st, int *q32, const unsigned *lut, const int *start,
                                       const int *shape, const int *order, const int *orderStart,
                                       const u8 *bucket, int *err, i64 K, i64 entries, i64 nblocks,
                                       i64 nsamples, i64 chunk) {
  const i64 si = (i64)bidx() * ntid() + tid();
  const i64 nslices = *(const unsigned *)(st + 4);
  if (si >= nslices)
    return;
  const unsigned *e = (const unsigned *)(st + 16 + 56 * 32) + 6 * si;
  const i64 first = e[4], count = e[5];
  const u8 *rs = st + e[0], *bs = st + e[2];
  const i64 rl = e[1], bl = e[3];
  unsigned x0 = rs[0] | rs[1] << 8 | rs[2] << 16 | (unsigned)rs[3] << 24;
  unsigned x1 = rs[4] | rs[5] << 8 | rs[6] << 16 | (unsigned)rs[7] << 24;
  i64 pos = 8;     // next rANS byte
  i64 bp = 0;      // raw bits consumed
  unsigned long long acc = 0; // raw bits from bit bp on
  int nacc = 0;
  i64 bnext = 0; // next raw byte to load
  bool bad = false;
  const i64 K16 = 16 * K;
  const i64 total = nblocks * nsamples;
  for (i64 gb = first; gb < total && gb < first + count && !bad; gb++) {
    i64 smp = gb / nblocks, bi = gb - smp * nblocks;
    int sh = shape[bi];
    if (sh < 0)
      continue;
    const int *ord = order + orderStart[sh];
    int cnt = orderStart[sh + 1] - orderStart[sh];
    int *q = q32 + smp * entries + start[bi];
    for (int j = 0; j < cnt; j++) {
      int off = ord[j];
      unsigned b = bucket[(i64)sh * K16 + off];
      unsigned v = lut[(b << 11) | (x0 & 2047)];
      x0 = (v & 0xfff) * (x0 >> 11) + ((v >> 12) & 0x7ff);
      if (x0 < (1u << 16)) {
        unsigned w = pos + 1 < rl ? (rs[pos] | rs[pos + 1] << 8) : 0;
        x0 = x0 << 16 | w;
        pos += 2;
      }
      // Keep at least 57 raw bits at hand: an escape's code is at most
      // 2*24+1 bits, the low bits at most 10, the sign 1.
      while (nacc <= 56) {
        unsigned long long byte = bnext < bl ? bs[bnext] : 0;
        acc |= byte << nacc;
        nacc += 8;
        bnext++;
      }
      unsigned t = v >> 23;
      if (t == 15) {
        int nz = 0;
        while (!(acc & 1)) {
          acc >>= 1;
          nacc--;
          bp++;
          if (++nz > 24) {
            bad = true;
            break;
          }
        }
        if (bad)
          break;
        acc >>= 1;
        nacc--;
        bp++;
        while (nacc <= 56) {
          unsigned long long byte = bnext < bl ? bs[bnext] : 0;
          acc |= byte << nacc;
          nacc += 8;
          bnext++;
        }
        unsigned xv = (unsigned)(acc & ((1ull << nz) - 1));
        acc >>= nz;
        nacc -= nz;
        bp += nz;
        t += ((1u << nz) | xv) - 1;
      }
      int r = (int)(b >> 2) - 3;
      if (r < 0)
        r = 0;
      unsigned mag = t << r | (unsigned)(acc & ((1ull << r) - 1));
      acc >>= r;
      nacc -= r;
      bp += r;
      int qv = (int)mag;
      if (mag != 0) {
        if (acc & 1)
          qv = -qv;
        acc >>= 1;
        nacc--;
        bp++;
      }
      q[j] = qv;
      unsigned tmp = x0;
      x0 = x1;
      x1 = tmp;
    }
  }
  if (bad || x0 != (1u << 16) || x1 != (1u << 16) || pos != rl || (bp + 7) / 8 != bl)
    atomicMax(err, (int)(chunk + 1));
}

// rawbit returns bit p of the raw bit stream bs of bl bytes (0 past its
// end).
__device__ static inline unsigned rawbit(const u8 *bs, i64 bl, i64 p) {
  return (p >> 3) < bl ? (bs[p >> 3] >> (p & 7)) & 1 : 0;
}

// rawbits reads n bits (LSB first) at *bp.
__device__ static inline unsigned rawbits(const u8 *bs, i64 bl, i64 *bp, int n) {
  unsigned v = 0;
  for (int i = 0; i < n; i++)
    v |= rawbit(bs, bl, *bp + i) << i;
  *bp += n;
  return v;
}

// expgolomb reads an Exp-Golomb code at *bp; *bad when it is too long.
__device__ static unsigned expgolomb(const u8 *bs, i64 bl, i64 *bp, bool *bad) {
  int nz = 0;
  while (rawbits(bs, bl, bp, 1) == 0) {
    if (++nz > 24) {
      *bad = true;
      return 0;
    }
  }
  return ((1u << nz) | rawbits(bs, bl, bp, nz)) - 1;
}

// ntc_entropy6: ntc_entropy for payload version 6 (pkg/codec/ans.go): the
// slice's lanes (the coding word's low byte) take its symbols in turn,
// each with its trellis state, through the alias tables in lut (4096
// entries P, then 4096 A); then each block's raw bits (plain buckets'
// low bits and signs, escapes). It writes the signed levels.
extern "C" __global__ void ntc_entropy6(const u8 *st, int *q32, const unsigned *lut, const int *start,
                                        const int *shape, const int *order, const int *orderStart,
                                        const u8 *bucket, int *err, i64 K, i64 entries, i64 nblocks,
                                        i64 nsamples, i64 chunk) {
  const i64 si = (i64)bidx() * ntid() + tid();
  const i64 nslices = *(const unsigned *)(st + 4);
  if (si >= nslices)
    return;
  const int lanes = *(const unsigned *)(st + 12) & 0xff;
  // The first plain bucket: 20, or 28 from model version 8.
  const unsigned pb = (*(const unsigned *)(st + 12) >> 16) & 0xff;
  const unsigned *e = (const unsigned *)(st + 16 + 56 * 32) + 6 * si;
  const u8 *rs = st + e[0], *bs = st + e[2];
  const i64 rl = e[1], bl = e[3];
  const i64 first = e[4], count = e[5];
  const unsigned *P = lut, *A = lut + 4096;
  unsigned x[16], ts[16]; // up to 16 lanes (payload version 6: 1, 8 or 16)
  bool bad = lanes < 1 || lanes > 16 || rl < 4 * lanes;
  for (int l = 0; l < lanes && !bad; l++) {
    x[l] = rs[4 * l] | rs[4 * l + 1] << 8 | rs[4 * l + 2] << 16 | (unsigned)rs[4 * l + 3] << 24;
    ts[l] = 0;
  }
  i64 pos = 4 * lanes; // next rANS byte
  i64 bp = 0;          // raw bits consumed
  i64 j = 0;           // the symbol's index in the slice
  const i64 K16 = 16 * K;
  const i64 total = nblocks * nsamples;
  for (i64 gb = first; gb < total && gb < first + count && !bad; gb++) {
    i64 smp = gb / nblocks, bi = gb - smp * nblocks;
    int sh = shape[bi];
    if (sh < 0)
      continue;
    const int *ord = order + orderStart[sh];
    int cnt = orderStart[sh + 1] - orderStart[sh];
    int *q = q32 + smp * entries + start[bi];
    // The lanes first: the symbols, with their quantizer, into q.
    for (int k = 0; k < cnt; k++, j++) {
      unsigned b = bucket[(i64)sh * K16 + ord[k]];
      int l = (int)(j % lanes);
      bool plain = b >= pb;
      unsigned qz = plain ? 0 : ts[l] >> 1;
      unsigned slot = x[l] & 4095, i = (b * 2 + qz) * 32 + slot / 128, lo = slot % 128;
      unsigned part = P[i], rank = lo;
      if (lo > ((part >> 12) & 127)) {
        part = A[i];
        rank = (lo + (part >> 12)) & 4095;
      }
      x[l] = (part & 4095) * (x[l] >> 12) + rank;
      if (x[l] < (1u << 16)) {
        unsigned w = pos + 1 < rl ? (rs[pos] | rs[pos + 1] << 8) : 0;
        x[l] = x[l] << 16 | w;
        pos += 2;
      }
      unsigned s = (part >> 24) & 31;
      if (!plain)
        ts[l] = (0x7d28u >> (4 * ts[l] + 2 * (s & 1))) & 3;
      q[k] = (int)(s | qz << 5);
    }
    // Then the raw bits, and the levels.
    for (int k = 0; k < cnt && !bad; k++) {
      unsigned b = bucket[(i64)sh * K16 + ord[k]];
      unsigned s = (unsigned)q[k] & 31, qz = (unsigned)q[k] >> 5, mag, neg = 0;
      if (b >= pb) {
        unsigned t = s;
        if (s == 31)
          t += expgolomb(bs, bl, &bp, &bad);
        int r = (int)(b >> 2) - 4;
        mag = t << r | rawbits(bs, bl, &bp, r);
        if (t != 0 || r != 0)
          neg = rawbits(bs, bl, &bp, 1);
      } else if (s == 16) {
        mag = 16 + expgolomb(bs, bl, &bp, &bad);
        neg = rawbits(bs, bl, &bp, 1);
      } else {
        mag = s & 15;
        neg = s >> 4;
      }
      int lev = (int)mag;
      if (b < pb && mag != 0)
        lev = (int)(2 * mag - qz);
      q[k] = neg ? -lev : lev;
    }
  }
  for (int l = 0; l < lanes && !bad; l++)
    bad = x[l] != (1u << 16);
  if (bad || pos != rl || (bp + 7) / 8 != bl)
    atomicMax(err, (int)(chunk + 1));
}

// ntc_rows: the last part of DeviceNTC. One block per int8 row (prefix and
// outlier tokens), written over the output: code times scale, rounded,
// and for a prefix token t (t % tokens < prefix) when mean is not null
// (model version 6), plus its position's prefix mean, rounded:
// mean[(t % tokens) * D + d], prefix x D float16 (NTCModel.PrefixMean).
// Outlier rows have no mean.
extern "C" __global__ void ntc_rows(const u8 *st, void *out, const u16 *mean, i64 rowoff, i64 nrows, i64 D,
                                    i64 tokens, i64 prefix, i64 f32) {
  for (i64 r = bidx(); r < nrows; r += nbidx()) {
    const unsigned *idx = (const unsigned *)(st + rowoff);
    const u8 *row = st + rowoff + 4 * nrows + r * (2 + D);
    float scale = h2f(ld16(row));
    i64 t = idx[r];
    i64 pos = t % tokens;
    const u16 *m = mean != nullptr && pos < prefix ? mean + pos * D : nullptr;
    for (i64 d = tid(); d < D; d += ntid()) {
      float v = mul_rn((float)(signed char)row[2 + d], scale);
      if (m != nullptr)
        v = add_rn(v, h2f(m[d]));
      store(out, t * D + d, v, f32);
    }
  }
}
