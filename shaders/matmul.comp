#version 450
#extension GL_EXT_control_flow_attributes : require
// y[M,N] = x[M,K] . w[N,K]^T (+ bias) with an optional epilogue, fp32 accumulation, bf16 weights.
// Activations (GELU/SiLU) are applied by a following eltwise pass. Variants (one per -D):
//   GEMM_TEX: TM x TN outputs per invocation, operands from RGBA32UI texel buffers, no shared
//             memory or barriers: the fastest form on lavapipe (PLATFORM.md). Needs K % 8 == 0 and
//             16-byte aligned operands (x_off / w_off count texels).
//   GEMM_SMEM: shared-memory tiled GEMM for GPUs (chosen when the device is not a CPU).
//   GEMV_TEX: M <= 4 (spec constant MR): subgroups stream rows of w; same operand requirements.
//   GENERIC:  storage buffers, any K and any element offsets; TM x TN outputs per invocation.
#include "common.glsl"

#define FLAG_BIAS 1u
#define FLAG_ACC 2u

layout(binding = 0) buffer Y { float y[]; };
#if defined(GENERIC)
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) readonly buffer W { uint w[]; };
#else
layout(binding = 1) uniform usamplerBuffer X;
layout(binding = 2) uniform usamplerBuffer W;
#endif
layout(binding = 3) readonly buffer Bias { uint bias[]; };

// x_off: fp32 elements (GENERIC) or texels; w_off: bf16 elements (GENERIC) or texels;
// y_off: fp32 elements; b_off: bf16 elements; ldy: row stride of y.
layout(push_constant) uniform P { uint M, N, K, x_off, w_off, y_off, b_off, ldy, flags; } p;

// Edge tiles: rows/columns past M/N were computed from the clamped last row/column, so they
// hold exactly the values of that row/column and are stored there again (same value, same
// invocation, old values all read first). Guard-free stores keep the unrolled code free of
// per-element branches, which made lavapipe's LLVM JIT take 10-60 s for a 16x16 tile.
// Activations run as a separate pass (eltwise.comp) for the same reason.

// Guarded store for the small-tile kernels.
void store(uint m, uint n, float v) {
  if ((p.flags & FLAG_BIAS) != 0u) v += BF16_AT(bias, p.b_off + n);
  uint o = p.y_off + m * p.ldy + n;
  if ((p.flags & FLAG_ACC) != 0u) v += y[o];
  y[o] = v;
}

#if defined(GEMM_TEX)
layout(local_size_x = WG) in;

void main() {
  uint n0 = (gl_WorkGroupID.x * WG + gl_LocalInvocationID.x) * TN;
  uint m0 = gl_WorkGroupID.y * TM;
  if (n0 >= p.N || m0 >= p.M) return;
  uint K8 = p.K >> 3, K4 = p.K >> 2;
  int wrow[TN], xrow[TM];
  [[unroll]] for (uint j = 0u; j < TN; j++) wrow[j] = int(p.w_off + min(n0 + j, p.N - 1u) * K8);
  [[unroll]] for (uint i = 0u; i < TM; i++) xrow[i] = int(p.x_off + min(m0 + i, p.M - 1u) * K4);
  float acc[TM][TN];
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] = 0.0;
  for (uint kt = 0u; kt < K8; kt++) {
    vec4 wl[TN], wh[TN];  // the 8 weights of row j: wl = k 0,2,4,6 / wh = k 1,3,5,7
    [[unroll]] for (uint j = 0u; j < TN; j++) {
      uvec4 t = texelFetch(W, wrow[j] + int(kt)).xyzw;
      wl[j] = uintBitsToFloat(t << 16);
      wh[j] = uintBitsToFloat(t & 0xffff0000u);
    }
    [[unroll]] for (uint i = 0u; i < TM; i++) {
      vec4 a0 = uintBitsToFloat(texelFetch(X, xrow[i] + int(2u * kt)));
      vec4 a1 = uintBitsToFloat(texelFetch(X, xrow[i] + int(2u * kt + 1u)));
      vec4 al = vec4(a0.x, a0.z, a1.x, a1.z), ah = vec4(a0.y, a0.w, a1.y, a1.w);
      [[unroll]] for (uint j = 0u; j < TN; j++)
        acc[i][j] += dot(al, wl[j]) + dot(ah, wh[j]);
    }
  }
  uint ncl[TN], mcl[TM];
  [[unroll]] for (uint j = 0u; j < TN; j++) ncl[j] = min(n0 + j, p.N - 1u);
  [[unroll]] for (uint i = 0u; i < TM; i++) mcl[i] = p.y_off + min(m0 + i, p.M - 1u) * p.ldy;
  if ((p.flags & FLAG_BIAS) != 0u) {
    [[unroll]] for (uint j = 0u; j < TN; j++) {
      float b = BF16_AT(bias, p.b_off + ncl[j]);
      [[unroll]] for (uint i = 0u; i < TM; i++) acc[i][j] += b;
    }
  }
  if ((p.flags & FLAG_ACC) != 0u) {
    [[unroll]] for (uint i = 0u; i < TM; i++)
      [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] += y[mcl[i] + ncl[j]];
  }
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint j = 0u; j < TN; j++) y[mcl[i] + ncl[j]] = acc[i][j];
}

#elif defined(GEMM_SMEM)
// For GPUs: 64 x 64 output tile per 256-thread workgroup, k in steps of 16 staged through shared
// memory, 4 x 4 outputs per thread. (On lavapipe shared memory and barriers are slow: there the
// register-tiled GEMM_TEX is used.) Same operand requirements as GEMM_TEX.
layout(local_size_x = 16, local_size_y = 16) in;
#define BM 64u
#define BN 64u
#define BK 16u
shared float As[BK][BM + 1u];
shared float Ws[BK][BN + 1u];

void main() {
  uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = ty * 16u + tx;
  uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
  uint K8 = p.K >> 3, K4 = p.K >> 2;
  float acc[4][4];
  [[unroll]] for (uint i = 0u; i < 4u; i++)
    [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
  // loaders: x tile = 64 rows x 4 texels (one per thread); w tile = 64 rows x 2 texels (threads < 128)
  uint xr = tid >> 2, xc = tid & 3u;
  uint wr = (tid & 127u) >> 1, wc = tid & 1u;
  int xrow = int(p.x_off + min(m0 + xr, p.M - 1u) * K4);
  int wrow = int(p.w_off + min(n0 + wr, p.N - 1u) * K8);
  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    uint xt = (k0 >> 2) + xc;
    vec4 a = xt < K4 ? uintBitsToFloat(texelFetch(X, xrow + int(xt))) : vec4(0.0);
    As[xc * 4u + 0u][xr] = a.x; As[xc * 4u + 1u][xr] = a.y;
    As[xc * 4u + 2u][xr] = a.z; As[xc * 4u + 3u][xr] = a.w;
    if (tid < 128u) {
      uint wt = (k0 >> 3) + wc;
      uvec4 t = wt < K8 ? texelFetch(W, wrow + int(wt)) : uvec4(0u);
      uint kb = wc * 8u;
      Ws[kb + 0u][wr] = bf16_lo(t.x); Ws[kb + 1u][wr] = bf16_hi(t.x);
      Ws[kb + 2u][wr] = bf16_lo(t.y); Ws[kb + 3u][wr] = bf16_hi(t.y);
      Ws[kb + 4u][wr] = bf16_lo(t.z); Ws[kb + 5u][wr] = bf16_hi(t.z);
      Ws[kb + 6u][wr] = bf16_lo(t.w); Ws[kb + 7u][wr] = bf16_hi(t.w);
    }
    barrier();
    [[unroll]] for (uint k = 0u; k < BK; k++) {
      float av[4], wv[4];
      [[unroll]] for (uint i = 0u; i < 4u; i++) av[i] = As[k][ty + 16u * i];
      [[unroll]] for (uint j = 0u; j < 4u; j++) wv[j] = Ws[k][tx + 16u * j];
      [[unroll]] for (uint i = 0u; i < 4u; i++)
        [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = fma(av[i], wv[j], acc[i][j]);
    }
    barrier();
  }
  [[unroll]] for (uint i = 0u; i < 4u; i++)
    [[unroll]] for (uint j = 0u; j < 4u; j++) {
      uint m = m0 + ty + 16u * i, n = n0 + tx + 16u * j;
      if (m < p.M && n < p.N) store(m, n, acc[i][j]);
    }
}

#elif defined(GEMV_TEX)
// One subgroup per group of GR rows of w; lane l reads texels l, l + S, ... of each row, so a
// subgroup reads contiguous memory; partial sums meet in subgroupAdd. Rows per workgroup are
// fixed (ROWS_WG) and walked by however many subgroups the device makes.
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint MR = 1u;
#define GR 4u
#define ROWS_WG 32u

void main() {
  uint S = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
  uint K8 = p.K >> 3, K4 = p.K >> 2;
  uint wg0 = jf_group_linear() * ROWS_WG;
  for (uint r0 = wg0 + gl_SubgroupID * GR; r0 < min(wg0 + ROWS_WG, p.N); r0 += gl_NumSubgroups * GR) {
    int wrow[GR];
    [[unroll]] for (uint j = 0u; j < GR; j++) wrow[j] = int(p.w_off + min(r0 + j, p.N - 1u) * K8);
    vec4 acc[4][GR];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
      [[unroll]] for (uint j = 0u; j < GR; j++) acc[i][j] = vec4(0.0);
    for (uint kt = lane; kt < K8; kt += S) {
      vec4 wl[GR], wh[GR];
      [[unroll]] for (uint j = 0u; j < GR; j++) {
        uvec4 t = texelFetch(W, wrow[j] + int(kt));
        wl[j] = uintBitsToFloat(t << 16);
        wh[j] = uintBitsToFloat(t & 0xffff0000u);
      }
      [[unroll]] for (uint i = 0u; i < MR; i++) {
        int xr = int(p.x_off + i * K4 + 2u * kt);
        vec4 a0 = uintBitsToFloat(texelFetch(X, xr));
        vec4 a1 = uintBitsToFloat(texelFetch(X, xr + 1));
        vec4 al = vec4(a0.x, a0.z, a1.x, a1.z), ah = vec4(a0.y, a0.w, a1.y, a1.w);
        [[unroll]] for (uint j = 0u; j < GR; j++) acc[i][j] += al * wl[j] + ah * wh[j];
      }
    }
    [[unroll]] for (uint i = 0u; i < MR; i++)
      [[unroll]] for (uint j = 0u; j < GR; j++) {
        float s = subgroupAdd((acc[i][j].x + acc[i][j].y) + (acc[i][j].z + acc[i][j].w));
        if (lane == 0u && r0 + j < p.N) store(i, r0 + j, s);
      }
  }
}

#elif defined(GENERIC)
layout(local_size_x = 8, local_size_y = 8) in;
#define GTM 4u
#define GTN 4u

void main() {
  uint n0 = gl_GlobalInvocationID.x * GTN, m0 = gl_GlobalInvocationID.y * GTM;
  if (n0 >= p.N || m0 >= p.M) return;
  uint xr[GTM], wr[GTN];
  [[unroll]] for (uint i = 0u; i < GTM; i++) xr[i] = p.x_off + min(m0 + i, p.M - 1u) * p.K;
  [[unroll]] for (uint j = 0u; j < GTN; j++) wr[j] = p.w_off + min(n0 + j, p.N - 1u) * p.K;
  float acc[GTM][GTN];
  [[unroll]] for (uint i = 0u; i < GTM; i++)
    [[unroll]] for (uint j = 0u; j < GTN; j++) acc[i][j] = 0.0;
  for (uint k = 0u; k < p.K; k++) {
    float a[GTM], b[GTN];
    [[unroll]] for (uint i = 0u; i < GTM; i++) a[i] = x[xr[i] + k];
    [[unroll]] for (uint j = 0u; j < GTN; j++) b[j] = BF16_AT(w, wr[j] + k);
    [[unroll]] for (uint i = 0u; i < GTM; i++)
      [[unroll]] for (uint j = 0u; j < GTN; j++) acc[i][j] = fma(a[i], b[j], acc[i][j]);
  }
  [[unroll]] for (uint i = 0u; i < GTM; i++) {
    if (m0 + i >= p.M) break;
    [[unroll]] for (uint j = 0u; j < GTN; j++)
      if (n0 + j < p.N) store(m0 + i, n0 + j, acc[i][j]);
  }
}
#endif
