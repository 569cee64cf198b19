#version 450
// 2-D convolution as an implicit GEMM: y[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]) (+ y[m, n])
// where m = output pixel (b, oy, ox), n = output channel, k = (ky, kx, ci) and A is gathered from
// x on the fly (zero padding, optional fused nearest 2x upsampling). Weights bf16
// [out_c, kh, kw, in_c]; fp32 activations and accumulation. Tiles of 64 pixels x 64 channels,
// 16 k per step, 4x4 outputs per thread (strided by 16 so shared-memory reads do not conflict).
// Indices are global (from the tensor start); every access adds the window offset (*_add).
// With -DW_F32 the "weights" are fp32 [N, K] (an activation x activation GEMM for attention).
//
// -DREG: the CPU (lavapipe) form of the same op: no shared memory and no barriers, TM x TN outputs
// per invocation in registers, and with -DTEX the operands come from RGBA32UI texel buffers
// (8 bf16 weights or 4 fp32 values per fetch; needs in_c % 8 == 0, or K % 4 == 0 for W_F32),
// which is what runs fast on llvmpipe (spec/PLATFORM.md §2). Indices in the TEX variant's
// *_add are texels. Invocations are numbered with the 16-channel tile fastest across all of a
// dispatch's tiles, so the 8 SIMD lanes llvmpipe runs together stay busy when out_c < 128 (the
// VAE's 64-channel level and its 3-channel conv_out). llvmpipe scalarises integer division
// (8 divides per vector op): pixel coordinates are stepped, not divided, per output row.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#extension GL_EXT_control_flow_attributes : require

layout(push_constant) uniform P {
  uint M, p0, N, K;          // pixels in this dispatch, first global pixel, out channels, taps*in_c
  uint hi, wi, ci, ho, wo;   // x as stored; y
  uint kw, stride, pad;
  int x_add, y_add, w_add, b_add;
  uint flags;                // 1 accumulate, 2 upsample 2x, 4 x NCHW, 8 y NCHW, 16 bias
  uint n_base, n_end;        // the output channels of this dispatch (weights bound in windows)
} p;

layout(std430, binding = 0) buffer Y { float y[]; };
#if defined(REG) && defined(TEX)
layout(binding = 1) uniform usamplerBuffer X;
layout(binding = 2) uniform usamplerBuffer W;
#else
layout(std430, binding = 1) readonly buffer X { float x[]; };
#ifdef W_F32
layout(std430, binding = 2) readonly buffer W { float w[]; };
#else
layout(std430, binding = 2) readonly buffer W { uint w[]; };
#endif
#endif
layout(std430, binding = 3) readonly buffer B { uint bias[]; };

float bval(uint i) {
  uint v = bias[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
}

#ifdef REG
// ---- register-blocked form ---------------------------------------------------------------------
#define TM 16u
#define TN 16u
layout(local_size_x = 64) in;

void main() {
  const uint ntiles = (p.n_end - p.n_base + TN - 1u) / TN;
  const uint gid = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 64u + gl_LocalInvocationID.x;
  const uint mt = gid / ntiles;
  const uint n0 = p.n_base + (gid - mt * ntiles) * TN;
  const uint m0 = mt * TM;
  if (m0 >= p.M)
    return;
  const bool up = (p.flags & 2u) != 0u;
  const bool in_nchw = (p.flags & 4u) != 0u;
  const int heff = int(up ? 2u * p.hi : p.hi), weff = int(up ? 2u * p.wi : p.wi);
  const uint hw_out = p.ho * p.wo;
  // Rows past M / columns past n_end compute (and later store) the last valid row / column
  // again: no per-element guards in the unrolled loops (they make llvmpipe's JIT crawl).
  int iy0[TM], ix0[TM];
  uint img[TM], rem[TM];
  {
    uint pix = p.p0 + m0;
    uint b = pix / hw_out, r = pix - b * hw_out;
    uint oy = r / p.wo, ox = r - oy * p.wo;
    [[unroll]] for (uint i = 0u; i < TM; i++) {
      img[i] = b;
      rem[i] = oy * p.wo + ox;
      iy0[i] = int(oy * p.stride) - int(p.pad);
      ix0[i] = int(ox * p.stride) - int(p.pad);
      if (m0 + i + 1u < p.M) {   // else the next rows repeat this one
        ox++;
        if (ox == p.wo) { ox = 0u; oy++; }
        if (oy == p.ho) { oy = 0u; b++; }
      }
    }
  }
  uint nrow[TN];
  [[unroll]] for (uint j = 0u; j < TN; j++)
    nrow[j] = min(n0 + j, p.n_end - 1u);
  float acc[TM][TN];
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint j = 0u; j < TN; j++)
      acc[i][j] = 0.0;

  const uint taps = p.K / p.ci;
  int ky = 0, kx = 0;
  for (uint tap = 0u; tap < taps; tap++, kx++) {
    if (kx == int(p.kw)) { kx = 0; ky++; }
    int xb[TM];       // where pixel i's channels start for this tap (clamped inside the image)
    float vm[TM];     // 1 inside the (upsampled) image, 0 in the padding
    [[unroll]] for (uint i = 0u; i < TM; i++) {
      int iy = iy0[i] + ky, ix = ix0[i] + kx;
      bool inside = iy >= 0 && iy < heff && ix >= 0 && ix < weff;
      vm[i] = inside ? 1.0 : 0.0;
      uint sy = uint(clamp(iy, 0, heff - 1)), sx = uint(clamp(ix, 0, weff - 1));
      if (up) { sy >>= 1; sx >>= 1; }
#ifdef TEX
      xb[i] = int((((img[i] * p.hi + sy) * p.wi + sx) * p.ci) >> 2) + p.x_add;
#else
      xb[i] = in_nchw ? int((img[i] * p.ci * p.hi + sy) * p.wi + sx) + p.x_add
                      : int(((img[i] * p.hi + sy) * p.wi + sx) * p.ci) + p.x_add;
#endif
    }
#if defined(TEX) && !defined(W_F32)
    // 8 channels per step: one RGBA32UI texel of 8 bf16 weights, two of 4 fp32 activations
    int wb[TN];
    [[unroll]] for (uint j = 0u; j < TN; j++)
      wb[j] = int((nrow[j] * p.K + tap * p.ci) >> 3) + p.w_add;
    for (uint c8 = 0u; c8 < (p.ci >> 3); c8++) {
      vec4 wl[TN], wh[TN];
      [[unroll]] for (uint j = 0u; j < TN; j++) {
        uvec4 t = texelFetch(W, wb[j] + int(c8));
        wl[j] = uintBitsToFloat(t << 16);
        wh[j] = uintBitsToFloat(t & 0xffff0000u);
      }
      [[unroll]] for (uint i = 0u; i < TM; i++) {
        vec4 a0 = uintBitsToFloat(texelFetch(X, xb[i] + int(2u * c8))) * vm[i];
        vec4 a1 = uintBitsToFloat(texelFetch(X, xb[i] + int(2u * c8 + 1u))) * vm[i];
        vec4 al = vec4(a0.x, a0.z, a1.x, a1.z), ah = vec4(a0.y, a0.w, a1.y, a1.w);
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[i][j] += dot(al, wl[j]) + dot(ah, wh[j]);
      }
    }
#elif defined(TEX)
    // fp32 B, 4 channels per texel
    int wb[TN];
    [[unroll]] for (uint j = 0u; j < TN; j++)
      wb[j] = int((nrow[j] * p.K + tap * p.ci) >> 2) + p.w_add;
    for (uint c4 = 0u; c4 < (p.ci >> 2); c4++) {
      vec4 wv[TN];
      [[unroll]] for (uint j = 0u; j < TN; j++)
        wv[j] = uintBitsToFloat(texelFetch(W, wb[j] + int(c4)));
      [[unroll]] for (uint i = 0u; i < TM; i++) {
        vec4 a = uintBitsToFloat(texelFetch(X, xb[i] + int(c4))) * vm[i];
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[i][j] += dot(a, wv[j]);
      }
    }
#else
    // storage buffers, one channel per step (any in_c, NCHW input, unaligned offsets)
    uint cstep = in_nchw ? p.hi * p.wi : 1u;
    for (uint c = 0u; c < p.ci; c++) {
      float wv[TN];
      [[unroll]] for (uint j = 0u; j < TN; j++) {
        uint wi_ = uint(int(nrow[j] * p.K + tap * p.ci + c) + p.w_add);
#ifdef W_F32
        wv[j] = w[wi_];
#else
        uint v = w[wi_ >> 1];
        wv[j] = uintBitsToFloat((wi_ & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
#endif
      }
      [[unroll]] for (uint i = 0u; i < TM; i++) {
        float a = x[xb[i] + int(c * cstep)] * vm[i];
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[i][j] = fma(a, wv[j], acc[i][j]);
      }
    }
#endif
  }

  // Epilogue: read everything this invocation adds to first, then store (duplicated edge rows
  // and columns store the same value twice).
  const bool out_nchw = (p.flags & 8u) != 0u;
  int yo[TM];
  [[unroll]] for (uint i = 0u; i < TM; i++) {
    uint pix = p.p0 + min(m0 + i, p.M - 1u);
    yo[i] = out_nchw ? int(img[i] * p.N * hw_out + rem[i]) + p.y_add : int(pix * p.N) + p.y_add;
  }
  uint nstride = out_nchw ? hw_out : 1u;
  if ((p.flags & 16u) != 0u) {
    [[unroll]] for (uint j = 0u; j < TN; j++) {
      float bv = bval(uint(int(nrow[j]) + p.b_add));
      [[unroll]] for (uint i = 0u; i < TM; i++)
        acc[i][j] += bv;
    }
  }
  if ((p.flags & 1u) != 0u) {
    [[unroll]] for (uint i = 0u; i < TM; i++)
      [[unroll]] for (uint j = 0u; j < TN; j++)
        acc[i][j] += y[yo[i] + int(nrow[j] * nstride)];
  }
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint j = 0u; j < TN; j++)
      y[yo[i] + int(nrow[j] * nstride)] = acc[i][j];
}

#else
// ---- shared-memory tiled form (GPUs) -----------------------------------------------------------
#define BM 64
#define BN 64
#define BK 16

layout(local_size_x = 256) in;

float wval(uint i) {
#ifdef W_F32
  return w[i];
#else
  uint v = w[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
#endif
}

shared float As[BK][BM + 1];
shared float Bs[BK][BN + 1];


void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint tx = tid % 16u, ty = tid / 16u;
  const uint m0 = gl_WorkGroupID.x * BM, n0 = p.n_base + gl_WorkGroupID.y * BN;
  const bool up = (p.flags & 2u) != 0u;
  const bool in_nchw = (p.flags & 4u) != 0u;
  const int heff = int(up ? 2u * p.hi : p.hi), weff = int(up ? 2u * p.wi : p.wi);
  const uint hw_out = p.ho * p.wo;

  // The A rows this thread gathers never change with k: decode their pixels once.
  const uint kl = tid % 16u;
  int iy0[4], ix0[4];
  uint img[4];
  bool mvalid[4];
  for (uint r = 0u; r < 4u; r++) {
    uint m = m0 + tid / 16u + 16u * r;
    mvalid[r] = m < p.M;
    uint pix = p.p0 + (mvalid[r] ? m : 0u);
    uint b = pix / hw_out, rem = pix % hw_out;
    img[r] = b;
    iy0[r] = int((rem / p.wo) * p.stride) - int(p.pad);
    ix0[r] = int((rem % p.wo) * p.stride) - int(p.pad);
  }

  float acc[4][4];
  for (uint i = 0u; i < 4u; i++)
    for (uint j = 0u; j < 4u; j++)
      acc[i][j] = 0.0;

  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    // A tile: this thread's k column (kl), rows tid/16 + 16 r.
    uint k = k0 + kl;
    bool kvalid = k < p.K;
    uint ci = k % p.ci, tap = k / p.ci;
    int ky = int(tap / p.kw), kx = int(tap % p.kw);
    for (uint r = 0u; r < 4u; r++) {
      float v = 0.0;
      int iy = iy0[r] + ky, ix = ix0[r] + kx;
      if (kvalid && mvalid[r] && iy >= 0 && iy < heff && ix >= 0 && ix < weff) {
        uint sy = up ? uint(iy) >> 1 : uint(iy), sx = up ? uint(ix) >> 1 : uint(ix);
        uint idx = in_nchw ? ((img[r] * p.ci + ci) * p.hi + sy) * p.wi + sx
                           : ((img[r] * p.hi + sy) * p.wi + sx) * p.ci + ci;
        v = x[int(idx) + p.x_add];
      }
      As[kl][tid / 16u + 16u * r] = v;
    }
    // W tile [N, K]: k column kl, channels tid/16 + 16 r (neighbouring threads: neighbouring k).
    for (uint r = 0u; r < 4u; r++) {
      uint n = n0 + tid / 16u + 16u * r;
      float v = 0.0;
      if (kvalid && n < p.n_end)
        v = wval(uint(int(n * p.K + k) + p.w_add));
      Bs[kl][tid / 16u + 16u * r] = v;
    }
    barrier();
    for (uint kk = 0u; kk < BK; kk++) {
      float a[4], bb[4];
      for (uint i = 0u; i < 4u; i++) a[i] = As[kk][ty + 16u * i];
      for (uint j = 0u; j < 4u; j++) bb[j] = Bs[kk][tx + 16u * j];
      for (uint i = 0u; i < 4u; i++)
        for (uint j = 0u; j < 4u; j++)
          acc[i][j] = fma(a[i], bb[j], acc[i][j]);
    }
    barrier();
  }

  const bool out_nchw = (p.flags & 8u) != 0u;
  for (uint i = 0u; i < 4u; i++) {
    uint m = m0 + ty + 16u * i;
    if (m >= p.M)
      continue;
    uint pix = p.p0 + m;
    uint b = pix / hw_out, rem = pix % hw_out;
    for (uint j = 0u; j < 4u; j++) {
      uint n = n0 + tx + 16u * j;
      if (n >= p.n_end)
        continue;
      float v = acc[i][j];
      if ((p.flags & 16u) != 0u)
        v += bval(uint(int(n) + p.b_add));
      uint idx = out_nchw ? (b * p.N + n) * hw_out + rem : pix * p.N + n;
      int at = int(idx) + p.y_add;
      if ((p.flags & 1u) != 0u)
        v += y[at];
      y[at] = v;
    }
  }
}
#endif
