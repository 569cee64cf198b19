#version 450
#extension GL_EXT_control_flow_attributes : require
// y[M,N] = x[M,K] . dequant(w)[N,K]^T (+ bias) (+ y) with Q8_0 weights (vk/quant.h): int8 quants
// row-major (16 per RGBA32UI texel), one fp32 scale per 32 k in a separate array whose rows are
// padded to whole texels. fp32 activations and accumulation; the weights are dequantized in
// registers. K % 32 == 0. Activations (GELU/SiLU) run as a following eltwise pass, as in
// matmul.comp. Variants (one per -D):
//   GEMM_TEX: TM x TN outputs per invocation, every operand from a texel buffer (lavapipe).
//   GEMM_SMEM: shared-memory tiled GEMM for GPUs; weights dequantized into shared memory.
//   GEMV_TEX: M <= 4 (spec constant MR): subgroups stream rows of quants, one block per lane step.
//   GENERIC:  storage buffers, any x offset (x_off in floats, q_off in words, s_off in floats).
#include "common.glsl"

#define FLAG_BIAS 1u
#define FLAG_ACC 2u

layout(binding = 0) buffer Y { float y[]; };
#if defined(GENERIC)
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) readonly buffer Q { uint q[]; };
layout(binding = 3) readonly buffer S { float s[]; };
#else
layout(binding = 1) uniform usamplerBuffer X;
layout(binding = 2) uniform usamplerBuffer Q;
layout(binding = 3) uniform usamplerBuffer S;
#endif
layout(binding = 4) readonly buffer Bias { uint bias[]; };

// x_off, q_off, s_off: texels (GENERIC: see above); y_off: fp32 elements; b_off: bf16 elements;
// ldy: row stride of y; sk: floats per row of the scale array.
layout(push_constant) uniform P { uint M, N, K, x_off, q_off, s_off, y_off, b_off, ldy, sk, flags; } p;

// The four int8 of a word, sign-extended: byte 0 is the lowest k.
vec4 i8x4(uint u) { return vec4(ivec4(uvec4(u << 24, u << 16, u << 8, u)) >> 24); }

void store(uint m, uint n, float v) {
  if ((p.flags & FLAG_BIAS) != 0u) v += BF16_AT(bias, p.b_off + n);
  uint o = p.y_off + m * p.ldy + n;
  if ((p.flags & FLAG_ACC) != 0u) v += y[o];
  y[o] = v;
}

#if defined(GEMM_TEX)
// As GEMM_TEX in matmul.comp: clamped edge rows/columns and guard-free stores keep lavapipe's
// JIT fast. One quant texel (16 k) per row per step, used in two halves of 8 k.
layout(local_size_x = WG) in;

void main() {
  uint n0 = (gl_WorkGroupID.x * WG + gl_LocalInvocationID.x) * TN;
  uint m0 = gl_WorkGroupID.y * TM;
  if (n0 >= p.N || m0 >= p.M) return;
  uint K16 = p.K >> 4, K4 = p.K >> 2, SK4 = p.sk >> 2;
  int qrow[TN], srow[TN], xrow[TM];
  [[unroll]] for (uint j = 0u; j < TN; j++) {
    uint n = min(n0 + j, p.N - 1u);
    qrow[j] = int(p.q_off + n * K16);
    srow[j] = int(p.s_off + n * SK4);
  }
  [[unroll]] for (uint i = 0u; i < TM; i++) xrow[i] = int(p.x_off + min(m0 + i, p.M - 1u) * K4);
  float acc[TM][TN];
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint j = 0u; j < TN; j++) acc[i][j] = 0.0;
  for (uint kt = 0u; kt < K16; kt++) {
    uvec4 t[TN];
    float d[TN];
    [[unroll]] for (uint j = 0u; j < TN; j++) {
      t[j] = texelFetch(Q, qrow[j] + int(kt));
      d[j] = uintBitsToFloat(texelFetch(S, srow[j] + int(kt >> 3))[(kt >> 1) & 3u]);
    }
    [[unroll]] for (uint hh = 0u; hh < 2u; hh++) {
      vec4 w0[TN], w1[TN];
      [[unroll]] for (uint j = 0u; j < TN; j++) {
        w0[j] = i8x4(t[j][2u * hh]) * d[j];
        w1[j] = i8x4(t[j][2u * hh + 1u]) * d[j];
      }
      [[unroll]] for (uint i = 0u; i < TM; i++) {
        vec4 a0 = uintBitsToFloat(texelFetch(X, xrow[i] + int(4u * kt + 2u * hh)));
        vec4 a1 = uintBitsToFloat(texelFetch(X, xrow[i] + int(4u * kt + 2u * hh + 1u)));
        [[unroll]] for (uint j = 0u; j < TN; j++)
          acc[i][j] += dot(a0, w0[j]) + dot(a1, w1[j]);
      }
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
// For GPUs: 64 x 64 output tile per 256-thread workgroup, k in steps of 16 (one quant texel per
// weight row) staged through shared memory already dequantized, 4 x 4 outputs per thread.
layout(local_size_x = 16, local_size_y = 16) in;
#define BM 64u
#define BN 64u
#define BK 16u
shared float As[BK][BM + 1u];
shared float Ws[BK][BN + 1u];

void main() {
  uint tx = gl_LocalInvocationID.x, ty = gl_LocalInvocationID.y, tid = ty * 16u + tx;
  uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
  uint K16 = p.K >> 4, K4 = p.K >> 2, SK4 = p.sk >> 2;
  float acc[4][4];
  [[unroll]] for (uint i = 0u; i < 4u; i++)
    [[unroll]] for (uint j = 0u; j < 4u; j++) acc[i][j] = 0.0;
  // loaders: x tile = 64 rows x 4 texels (one per thread); w tile = 64 rows x 1 texel (threads < 64)
  uint xr = tid >> 2, xc = tid & 3u;
  uint wr = tid & 63u;
  int xrow = int(p.x_off + min(m0 + xr, p.M - 1u) * K4);
  uint wn = min(n0 + wr, p.N - 1u);
  int qrow = int(p.q_off + wn * K16), srow = int(p.s_off + wn * SK4);
  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    vec4 a = uintBitsToFloat(texelFetch(X, xrow + int((k0 >> 2) + xc)));
    As[xc * 4u + 0u][xr] = a.x; As[xc * 4u + 1u][xr] = a.y;
    As[xc * 4u + 2u][xr] = a.z; As[xc * 4u + 3u][xr] = a.w;
    if (tid < 64u) {
      uint kt = k0 >> 4;
      uvec4 t = texelFetch(Q, qrow + int(kt));
      float d = uintBitsToFloat(texelFetch(S, srow + int(kt >> 3))[(kt >> 1) & 3u]);
      [[unroll]] for (uint c = 0u; c < 4u; c++) {
        vec4 v = i8x4(t[c]) * d;
        Ws[4u * c + 0u][wr] = v.x; Ws[4u * c + 1u][wr] = v.y;
        Ws[4u * c + 2u][wr] = v.z; Ws[4u * c + 3u][wr] = v.w;
      }
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
// One subgroup per group of GR rows; lane l takes blocks l, l + S, ... (two quant texels and one
// scale each), so a subgroup reads contiguous memory; the block's partial dot product is scaled
// once; partial sums meet in subgroupAdd. ROWS_WG rows per workgroup (vkrt_ops_gemv_rows).
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint MR = 1u;
layout(constant_id = 1) const uint ROWS_WG = 32u;
#define GR 4u

void main() {
  uint S_ = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
  uint K16 = p.K >> 4, K4 = p.K >> 2, KB = p.K >> 5, SK4 = p.sk >> 2;
  uint wg0 = jf_group_linear() * ROWS_WG;
  for (uint r0 = wg0 + gl_SubgroupID * GR; r0 < min(wg0 + ROWS_WG, p.N); r0 += gl_NumSubgroups * GR) {
    int qrow[GR], srow[GR];
    [[unroll]] for (uint j = 0u; j < GR; j++) {
      uint n = min(r0 + j, p.N - 1u);
      qrow[j] = int(p.q_off + n * K16);
      srow[j] = int(p.s_off + n * SK4);
    }
    float acc[4][GR];
    [[unroll]] for (uint i = 0u; i < 4u; i++)
      [[unroll]] for (uint j = 0u; j < GR; j++) acc[i][j] = 0.0;
    for (uint kb = lane; kb < KB; kb += S_) {
      vec4 w[GR][8];
      float d[GR];
      [[unroll]] for (uint j = 0u; j < GR; j++) {
        uvec4 t0 = texelFetch(Q, qrow[j] + int(2u * kb));
        uvec4 t1 = texelFetch(Q, qrow[j] + int(2u * kb + 1u));
        d[j] = uintBitsToFloat(texelFetch(S, srow[j] + int(kb >> 2))[kb & 3u]);
        w[j][0] = i8x4(t0.x); w[j][1] = i8x4(t0.y); w[j][2] = i8x4(t0.z); w[j][3] = i8x4(t0.w);
        w[j][4] = i8x4(t1.x); w[j][5] = i8x4(t1.y); w[j][6] = i8x4(t1.z); w[j][7] = i8x4(t1.w);
      }
      [[unroll]] for (uint i = 0u; i < MR; i++) {
        int xr = int(p.x_off + i * K4 + 8u * kb);
        vec4 a[8];
        [[unroll]] for (uint c = 0u; c < 8u; c++) a[c] = uintBitsToFloat(texelFetch(X, xr + int(c)));
        [[unroll]] for (uint j = 0u; j < GR; j++) {
          vec4 s4 = a[0] * w[j][0];
          [[unroll]] for (uint c = 1u; c < 8u; c++) s4 += a[c] * w[j][c];
          acc[i][j] += d[j] * ((s4.x + s4.y) + (s4.z + s4.w));
        }
      }
    }
    [[unroll]] for (uint i = 0u; i < MR; i++)
      [[unroll]] for (uint j = 0u; j < GR; j++) {
        float s = subgroupAdd(acc[i][j]);
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
  uint xr[GTM], qr[GTN], sr[GTN];
  [[unroll]] for (uint i = 0u; i < GTM; i++) xr[i] = p.x_off + min(m0 + i, p.M - 1u) * p.K;
  [[unroll]] for (uint j = 0u; j < GTN; j++) {
    uint n = min(n0 + j, p.N - 1u);
    qr[j] = p.q_off + n * (p.K >> 2);
    sr[j] = p.s_off + n * p.sk;
  }
  float acc[GTM][GTN];
  [[unroll]] for (uint i = 0u; i < GTM; i++)
    [[unroll]] for (uint j = 0u; j < GTN; j++) acc[i][j] = 0.0;
  for (uint k = 0u; k < p.K; k += 4u) {
    vec4 a[GTM], b[GTN];
    [[unroll]] for (uint i = 0u; i < GTM; i++)
      a[i] = vec4(x[xr[i] + k], x[xr[i] + k + 1u], x[xr[i] + k + 2u], x[xr[i] + k + 3u]);
    [[unroll]] for (uint j = 0u; j < GTN; j++) b[j] = i8x4(q[qr[j] + (k >> 2)]) * s[sr[j] + (k >> 5)];
    [[unroll]] for (uint i = 0u; i < GTM; i++)
      [[unroll]] for (uint j = 0u; j < GTN; j++) acc[i][j] += dot(a[i], b[j]);
  }
  [[unroll]] for (uint i = 0u; i < GTM; i++) {
    if (m0 + i >= p.M) break;
    [[unroll]] for (uint j = 0u; j < GTN; j++)
      if (n0 + j < p.N) store(m0 + i, n0 + j, acc[i][j]);
  }
}
#endif
