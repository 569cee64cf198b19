#version 450
#extension GL_EXT_control_flow_attributes : require
// y[M,N] = x[M,K] . w[N,K]^T (+ bias) with an optional epilogue, fp32 accumulation, bf16 weights.
// Activations (GELU/SiLU) are applied by a following eltwise pass. Variants (one per -D):
//   GEMM_TEX: TM x TN outputs per invocation, operands from RGBA32UI texel buffers, no shared
//             memory or barriers: the fastest form on lavapipe (PLATFORM.md). Needs K % 8 == 0 and
//             16-byte aligned operands (x_off / w_off count texels).
//   GEMM_SMEM: shared-memory tiled GEMM for GPUs (chosen when the device is not a CPU); its tile
//             is specialization constants (vk/op_matmul.c picks one per device). F16_EMU: see there.
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
// For GPUs: a BM x BN output tile per workgroup of (BM/TM) x (BN/TN) threads, each thread
// TM x TN outputs, k in steps of BK staged through shared memory. All six are specialization
// constants chosen per device by vk/op_matmul.c (gemm_tile_for). Shared memory is double
// buffered: the texels of step t+1 are fetched into registers while step t is multiplied, so
// each step needs one barrier and the global-memory latency hides behind the FMAs. Operands
// are read as whole 16-byte texels (4 activations / 8 weights). A thread's rows and columns are
// interleaved in groups of 4 (vec4 j4 of a thread is column (j4 * BN/TN + tx) * 4), so
// neighbouring threads read neighbouring vec4s of the shared tiles: no bank conflicts, and
// one 128-bit shared load feeds 4 columns. (No subgroup ops here: with this layout a shared
// vec4 load is as cheap as a shuffle of one 32-bit value, so shuffling fragments between lanes
// would only add instructions; see docs/PERFORMANCE.md.)
// On lavapipe shared memory and barriers are slow (PLATFORM.md): there GEMM_TEX is used.
// Same operand requirements as GEMM_TEX; edges: rows/columns past M/N load clamped rows and
// are not stored, k past K loads zeros.
// F16_EMU (test variant, never auto-selected): rounds both operands to fp16 after the exact
// power-of-two row scaling that matmul_coop.comp uses, so the numerics of the cooperative-matrix
// kernel can be checked (fixture parity) on a device that has no cooperative matrices.
layout(local_size_x_id = 0) in;
layout(constant_id = 1) const uint BM = 64u;
layout(constant_id = 2) const uint BN = 64u;
layout(constant_id = 3) const uint BK = 16u;
layout(constant_id = 4) const uint TM = 4u;
layout(constant_id = 5) const uint TN = 4u;
const uint NTM = BM / TM, NTN = BN / TN, NT = NTM * NTN;  // NT = the workgroup size (spec 0)
const uint BM4 = BM / 4u, BN4 = BN / 4u, TM4 = TM / 4u, TN4 = TN / 4u;
const uint XT = BM * BK / 4u, WT = BN * BK / 8u;           // texels per tile
const uint XL = (XT + NT - 1u) / NT, WL = (WT + NT - 1u) / NT;  // texels per thread
shared vec4 As[2u * BK * BM4];  // [buffer][k][m / 4]
shared vec4 Ws[2u * BK * BN4];  // [buffer][k][n / 4]
#if defined(F16_EMU)
shared uint xmax[BM], wmax[BN];
shared int xexp[BM], wexp[BN];
float f16_round(float v) { return unpackHalf2x16(packHalf2x16(vec2(v, 0.0))).x; }
// 2^e that brings a row whose largest |value| is mx to [2^13, 2^14): fp16 keeps 11 bits there
// and nothing overflows (products < 2^28, exact power of two so the scaling itself is exact)
int f16_exp(uint mxbits) {
  float mx = uintBitsToFloat(mxbits);
  if (!(mx > 0.0) || isinf(mx)) return 0;
  int e;
  frexp(mx, e);
  return clamp(14 - e, -100, 100);
}
#endif

void main() {
  uint tid = gl_LocalInvocationID.x, tx = tid % NTN, ty = tid / NTN;
  uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
  uint K8 = p.K >> 3, K4 = p.K >> 2;
  // loader slots: x texel q of the tile = row q / (BK/4), k-texel q % (BK/4) (a row's texels
  // are neighbours: coalesced); w likewise with BK/8 texels per row
  int xrow[XL], wrow[WL];
  [[unroll]] for (uint l = 0u; l < XL; l++)
    xrow[l] = int(p.x_off + min(m0 + (tid + l * NT) / (BK / 4u), p.M - 1u) * K4);
  [[unroll]] for (uint l = 0u; l < WL; l++)
    wrow[l] = int(p.w_off + min(n0 + (tid + l * NT) / (BK / 8u), p.N - 1u) * K8);
#if defined(F16_EMU)
  for (uint r = tid; r < BM; r += NT) xmax[r] = 0u;
  for (uint r = tid; r < BN; r += NT) wmax[r] = 0u;
  barrier();
  for (uint q = tid; q < BM * K4; q += NT) {
    vec4 a = abs(uintBitsToFloat(texelFetch(X, int(p.x_off + min(m0 + q / K4, p.M - 1u) * K4 + q % K4))));
    atomicMax(xmax[q / K4], floatBitsToUint(max(max(a.x, a.y), max(a.z, a.w))));
  }
  for (uint q = tid; q < BN * K8; q += NT) {
    uvec4 t = texelFetch(W, int(p.w_off + min(n0 + q / K8, p.N - 1u) * K8 + q % K8));
    uvec4 h = max(t & 0x7fff0000u, (t << 16) & 0x7fff0000u);  // |bf16| bits compare as uints
    atomicMax(wmax[q / K8], max(max(h.x, h.y), max(h.z, h.w)));
  }
  barrier();
  for (uint r = tid; r < BM; r += NT) xexp[r] = f16_exp(xmax[r]);
  for (uint r = tid; r < BN; r += NT) wexp[r] = f16_exp(wmax[r]);
  barrier();
#endif
  vec4 xr[XL];
  uvec4 wr[WL];
  uint nsteps = (p.K + BK - 1u) / BK;
  // fetch step t's texels into registers (zeros past K)
#define FETCH(t) { \
    [[unroll]] for (uint l = 0u; l < XL; l++) { \
      uint xt = (t) * (BK / 4u) + (tid + l * NT) % (BK / 4u); \
      xr[l] = (xt < K4 && tid + l * NT < XT) ? uintBitsToFloat(texelFetch(X, xrow[l] + int(xt))) : vec4(0.0); \
    } \
    [[unroll]] for (uint l = 0u; l < WL; l++) { \
      uint wt = (t) * (BK / 8u) + (tid + l * NT) % (BK / 8u); \
      wr[l] = (wt < K8 && tid + l * NT < WT) ? texelFetch(W, wrow[l] + int(wt)) : uvec4(0u); \
    } }
  FETCH(0u)
  vec4 acc[TM * TN4];
  [[unroll]] for (uint i = 0u; i < TM * TN4; i++) acc[i] = vec4(0.0);
  for (uint t = 0u; t < nsteps; t++) {
    // registers -> shared buffer t & 1 (its last readers finished before the previous barrier)
    uint sb = (t & 1u) * BK;
    [[unroll]] for (uint l = 0u; l < XL; l++) {
      uint q = tid + l * NT;
      if (q < XT) {
        uint r = q / (BK / 4u), k = (q % (BK / 4u)) * 4u;
        vec4 a = xr[l];
#if defined(F16_EMU)
        a = vec4(f16_round(ldexp(a.x, xexp[r])), f16_round(ldexp(a.y, xexp[r])),
                 f16_round(ldexp(a.z, xexp[r])), f16_round(ldexp(a.w, xexp[r])));
#endif
        As[(sb + k) * BM4 + r / 4u][r % 4u] = a.x;
        As[(sb + k + 1u) * BM4 + r / 4u][r % 4u] = a.y;
        As[(sb + k + 2u) * BM4 + r / 4u][r % 4u] = a.z;
        As[(sb + k + 3u) * BM4 + r / 4u][r % 4u] = a.w;
      }
    }
    [[unroll]] for (uint l = 0u; l < WL; l++) {
      uint q = tid + l * NT;
      if (q < WT) {
        uint r = q / (BK / 8u), k = (q % (BK / 8u)) * 8u;
        uvec4 tw = wr[l];
        float v[8] = float[8](bf16_lo(tw.x), bf16_hi(tw.x), bf16_lo(tw.y), bf16_hi(tw.y),
                              bf16_lo(tw.z), bf16_hi(tw.z), bf16_lo(tw.w), bf16_hi(tw.w));
        [[unroll]] for (uint c = 0u; c < 8u; c++) {
#if defined(F16_EMU)
          v[c] = f16_round(ldexp(v[c], wexp[r]));
#endif
          Ws[(sb + k + c) * BN4 + r / 4u][r % 4u] = v[c];
        }
      }
    }
    barrier();
    if (t + 1u < nsteps) FETCH(t + 1u)  // in flight during the multiply below
    [[unroll]] for (uint k = 0u; k < BK; k++) {
      vec4 a[TM4], b[TN4];
      [[unroll]] for (uint i4 = 0u; i4 < TM4; i4++) a[i4] = As[(sb + k) * BM4 + i4 * NTM + ty];
      [[unroll]] for (uint j4 = 0u; j4 < TN4; j4++) b[j4] = Ws[(sb + k) * BN4 + j4 * NTN + tx];
      [[unroll]] for (uint i4 = 0u; i4 < TM4; i4++)
        [[unroll]] for (uint ii = 0u; ii < 4u; ii++)
          [[unroll]] for (uint j4 = 0u; j4 < TN4; j4++)
            acc[(i4 * 4u + ii) * TN4 + j4] = fma(vec4(a[i4][ii]), b[j4], acc[(i4 * 4u + ii) * TN4 + j4]);
    }
    // no second barrier: the next step writes the other buffer, and the one after that comes
    // after the next step's barrier, which every thread reaches only once done reading this one
  }
  [[unroll]] for (uint i4 = 0u; i4 < TM4; i4++)
    [[unroll]] for (uint ii = 0u; ii < 4u; ii++) {
      uint ml = (i4 * NTM + ty) * 4u + ii, m = m0 + ml;
      if (m >= p.M) continue;
      [[unroll]] for (uint j4 = 0u; j4 < TN4; j4++)
        [[unroll]] for (uint c = 0u; c < 4u; c++) {
          uint nl = (j4 * NTN + tx) * 4u + c, n = n0 + nl;
          float v = acc[(i4 * 4u + ii) * TN4 + j4][c];
#if defined(F16_EMU)
          v = ldexp(v, -(xexp[ml] + wexp[nl]));
#endif
          if (n < p.N) store(m, n, v);
        }
    }
}

#elif defined(GEMV_TEX)
// One subgroup per group of GR rows of w; lane l reads texels l, l + S, ... of each row, so a
// subgroup reads contiguous memory; partial sums meet in subgroupAdd. ROWS_WG rows per workgroup
// (a multiple of GR, chosen per device by vkrt_ops_gemv_rows), walked by however many subgroups
// the device makes.
#extension GL_KHR_shader_subgroup_arithmetic : require
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint MR = 1u;
layout(constant_id = 1) const uint ROWS_WG = 32u;
#define GR 4u

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
