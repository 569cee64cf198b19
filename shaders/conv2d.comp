#version 450
// 2-D convolution as an implicit GEMM: y[m, n] = sum_k A[m, k] * W[n, k] (+ bias[n]) (+ y[m, n])
// where m = output pixel (b, oy, ox), n = output channel, k = (ky, kx, ci) and A is gathered from
// x on the fly (zero padding, optional fused nearest 2x upsampling). Weights bf16
// [out_c, kh, kw, in_c]; fp32 activations and accumulation. Tiles of 64 pixels x 64 channels,
// 16 k per step, 4x4 outputs per thread (strided by 16 so shared-memory reads do not conflict).
// Indices are global (from the tensor start); every access adds the window offset (*_add).
// With -DW_F32 the "weights" are fp32 (an activation x activation GEMM: attention scores and
// probabilities x values); flag 32 then says B is stored [K, N] instead of [N, K].
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#define BM 64
#define BN 64
#define BK 16

layout(local_size_x = 256) in;

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
#ifdef W_F32
layout(std430, binding = 2) readonly buffer W { float w[]; };
#else
layout(std430, binding = 2) readonly buffer W { uint w[]; };
#endif
layout(std430, binding = 3) readonly buffer B { uint bias[]; };

layout(push_constant) uniform P {
  uint M, p0, N, K;          // pixels in this dispatch, first global pixel, out channels, taps*in_c
  uint hi, wi, ci, ho, wo;   // x as stored; y
  uint kw, stride, pad;
  int x_add, y_add, w_add, b_add;
  uint flags;                // 1 accumulate, 2 upsample 2x, 4 x NCHW, 8 y NCHW, 16 bias, 32 B is [K, N]
  uint n_base, n_end;        // the output channels of this dispatch (weights bound in windows)
} p;

shared float As[BK][BM + 1];
shared float Bs[BK][BN + 1];

float wval(uint i) {
#ifdef W_F32
  return w[i];
#else
  uint v = w[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
#endif
}
float bval(uint i) {
  uint v = bias[i >> 1];
  return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16));
}

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
    if ((p.flags & 32u) == 0u) {
      // W tile [N, K]: k column kl, channels tid/16 + 16 r (neighbouring threads: neighbouring k).
      for (uint r = 0u; r < 4u; r++) {
        uint n = n0 + tid / 16u + 16u * r;
        float v = 0.0;
        if (kvalid && n < p.n_end)
          v = wval(uint(int(n * p.K + k) + p.w_add));
        Bs[kl][tid / 16u + 16u * r] = v;
      }
    } else {
      // B tile [K, N]: neighbouring threads read neighbouring n.
      for (uint r = 0u; r < 4u; r++) {
        uint e = tid + 256u * r;
        uint nl = e % 64u, kb = e / 64u;
        uint n = n0 + nl, kk = k0 + kb;
        float v = 0.0;
        if (kk < p.K && n < p.n_end)
          v = wval(uint(int(kk * p.N + n) + p.w_add));
        Bs[kb][nl] = v;
      }
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
