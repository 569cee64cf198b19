#version 450
// y[M,N] = x[M,K] . w[N,K]^T (+ bias) (+ y) with cooperative matrices (tensor cores, matrix
// cores): fp16 operands, fp32 accumulators. Same bindings, push constants, operand requirements
// (K % 8 == 0, texel-aligned x and w) and epilogue as GEMM_SMEM in matmul.comp.
//
// Two builds of this file: matmul_coop (GL_NV_cooperative_matrix, which Debian 12's glslc
// knows) and, with -DKHR, matmul_coop_khr (GL_KHR_cooperative_matrix: AMD, Intel and newer
// NVIDIA drivers), compiled only where meson finds a glslc and spirv-val that know it.
// The KHR build runs in the tests on Mesa 26's lavapipe (tools/mesa-next, a CI stage); the NV
// build has never run (no device with VK_NV_cooperative_matrix was available), and the two
// differ only in the spelling of the macros below. vk/op_matmul.c uses either only after a
// self-check on the device (a small GEMM compared with the fp32 kernel); on any failure it
// falls back to the fp32 kernels.
//
// Range and accuracy: fp16 has 5 exponent bits (max 65504) where fp32 activations and bf16
// weights have 8, so a plain conversion could overflow (large MLP activations) or lose tiny
// values. Each row of x and each row of w is therefore scaled by an exact power of two that
// brings its largest |value| into [2^13, 2^14) before the fp16 conversion, and the fp32 result
// is scaled back (the scales factor out of the dot product exactly). What remains is the fp16
// rounding of each operand (11 significant bits: relative error <= 2^-11 per operand, about
// 1e-7 normalised mean-square error on a GEMM output, vs. ~1e-14 for the fp32 kernels); the
// accumulation is fp32 as everywhere else. The fp32 kernel matmul_gemm_smem_f16emu reproduces
// exactly this rounding so that its effect on the fixtures can be measured without tensor
// cores (docs/PERFORMANCE.md).
//
// Tile: 64 x 64 outputs per workgroup of 4 subgroups (2 x 2, each 32 x 32 = (32/LM) x (32/LN)
// accumulator fragments), k in steps of 32 through shared memory (single buffered: the fp16
// conversion happens on the way into shared memory). LM x LN x LK is a fp16 x fp16 -> fp32
// subgroup shape the device reports (vkGetPhysicalDeviceCooperativeMatrixProperties{NV,KHR}; spec constants).
#ifdef KHR
#extension GL_KHR_cooperative_matrix : require
#else
#extension GL_NV_cooperative_matrix : require
#endif
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#extension GL_KHR_memory_scope_semantics : require
#extension GL_KHR_shader_subgroup_basic : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

#define FLAG_BIAS 1u
#define FLAG_ACC 2u

layout(local_size_x_id = 0) in;                 // 4 * subgroup size
layout(constant_id = 1) const uint LM = 16u;
layout(constant_id = 2) const uint LN = 16u;
layout(constant_id = 3) const uint LK = 16u;

layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) uniform usamplerBuffer X;
layout(binding = 2) uniform usamplerBuffer W;
layout(binding = 3) readonly buffer Bias { uint bias[]; };
layout(push_constant) uniform P { uint M, N, K, x_off, w_off, y_off, b_off, ldy, flags; } p;

#define BM 64u
#define BN 64u
#define BK 32u
#define ASTR 40u   // BK + 8 halves: rows start on 16-byte boundaries, banks staggered
#define CSTR 68u   // BN + 4 floats
const uint RM = 32u / LM, RN = 32u / LN;

#ifdef KHR
#define ACC_T coopmat<float, gl_ScopeSubgroup, LM, LN, gl_MatrixUseAccumulator>
#define A_T coopmat<float16_t, gl_ScopeSubgroup, LM, LK, gl_MatrixUseA>
#define B_T coopmat<float16_t, gl_ScopeSubgroup, LK, LN, gl_MatrixUseB>
#define LOAD_ROWS(m, arr, off, str) coopMatLoad(m, arr, off, str, gl_CooperativeMatrixLayoutRowMajor)
#define LOAD_COLS(m, arr, off, str) coopMatLoad(m, arr, off, str, gl_CooperativeMatrixLayoutColumnMajor)
#define MUL_ADD(a, b, c) coopMatMulAdd(a, b, c)
#define STORE_ROWS(m, arr, off, str) coopMatStore(m, arr, off, str, gl_CooperativeMatrixLayoutRowMajor)
#else
#define ACC_T fcoopmatNV<32, gl_ScopeSubgroup, LM, LN>
#define A_T fcoopmatNV<16, gl_ScopeSubgroup, LM, LK>
#define B_T fcoopmatNV<16, gl_ScopeSubgroup, LK, LN>
#define LOAD_ROWS(m, arr, off, str) coopMatLoadNV(m, arr, off, str, false)
#define LOAD_COLS(m, arr, off, str) coopMatLoadNV(m, arr, off, str, true)
#define MUL_ADD(a, b, c) coopMatMulAddNV(a, b, c)
#define STORE_ROWS(m, arr, off, str) coopMatStoreNV(m, arr, off, str, false)
#endif

shared float16_t As[BM * ASTR];  // [m][k]
shared float16_t Bs[BN * ASTR];  // [n][k]: B = w^T read column-major
shared float Cs[BM * CSTR];
shared uint xmax[BM], wmax[BN];
shared int xexp[BM], wexp[BN];

int f16_exp(uint mxbits) {
  float mx = uintBitsToFloat(mxbits);
  if (!(mx > 0.0) || isinf(mx)) return 0;
  int e;
  frexp(mx, e);
  return clamp(14 - e, -100, 100);
}

void main() {
  uint tid = gl_LocalInvocationID.x, nt = gl_WorkGroupSize.x;
  uint n0 = gl_WorkGroupID.x * BN, m0 = gl_WorkGroupID.y * BM;
  uint K8 = p.K >> 3, K4 = p.K >> 2;
  uint sm = gl_SubgroupID / 2u, sn = gl_SubgroupID % 2u;

  // per-row scales (see the header)
  for (uint r = tid; r < BM; r += nt) xmax[r] = 0u;
  for (uint r = tid; r < BN; r += nt) wmax[r] = 0u;
  barrier();
  for (uint q = tid; q < BM * K4; q += nt) {
    vec4 a = abs(uintBitsToFloat(texelFetch(X, int(p.x_off + min(m0 + q / K4, p.M - 1u) * K4 + q % K4))));
    atomicMax(xmax[q / K4], floatBitsToUint(max(max(a.x, a.y), max(a.z, a.w))));
  }
  for (uint q = tid; q < BN * K8; q += nt) {
    uvec4 t = texelFetch(W, int(p.w_off + min(n0 + q / K8, p.N - 1u) * K8 + q % K8));
    uvec4 h = max(t & 0x7fff0000u, (t << 16) & 0x7fff0000u);
    atomicMax(wmax[q / K8], max(max(h.x, h.y), max(h.z, h.w)));
  }
  barrier();
  for (uint r = tid; r < BM; r += nt) xexp[r] = f16_exp(xmax[r]);
  for (uint r = tid; r < BN; r += nt) wexp[r] = f16_exp(wmax[r]);
  barrier();

  ACC_T acc[RM][RN];
  [[unroll]] for (uint i = 0u; i < RM; i++)
    [[unroll]] for (uint j = 0u; j < RN; j++) acc[i][j] = ACC_T(0.0);

  for (uint k0 = 0u; k0 < p.K; k0 += BK) {
    for (uint q = tid; q < BM * (BK / 4u); q += nt) {
      uint r = q / (BK / 4u), kt = (k0 >> 2) + q % (BK / 4u);
      vec4 a = kt < K4 ? uintBitsToFloat(texelFetch(X, int(p.x_off + min(m0 + r, p.M - 1u) * K4 + kt))) : vec4(0.0);
      uint o = r * ASTR + (q % (BK / 4u)) * 4u;
      As[o] = float16_t(ldexp(a.x, xexp[r])); As[o + 1u] = float16_t(ldexp(a.y, xexp[r]));
      As[o + 2u] = float16_t(ldexp(a.z, xexp[r])); As[o + 3u] = float16_t(ldexp(a.w, xexp[r]));
    }
    for (uint q = tid; q < BN * (BK / 8u); q += nt) {
      uint r = q / (BK / 8u), kt = (k0 >> 3) + q % (BK / 8u);
      uvec4 t = kt < K8 ? texelFetch(W, int(p.w_off + min(n0 + r, p.N - 1u) * K8 + kt)) : uvec4(0u);
      uint o = r * ASTR + (q % (BK / 8u)) * 8u;
      int e = wexp[r];
      Bs[o] = float16_t(ldexp(bf16_lo(t.x), e)); Bs[o + 1u] = float16_t(ldexp(bf16_hi(t.x), e));
      Bs[o + 2u] = float16_t(ldexp(bf16_lo(t.y), e)); Bs[o + 3u] = float16_t(ldexp(bf16_hi(t.y), e));
      Bs[o + 4u] = float16_t(ldexp(bf16_lo(t.z), e)); Bs[o + 5u] = float16_t(ldexp(bf16_hi(t.z), e));
      Bs[o + 6u] = float16_t(ldexp(bf16_lo(t.w), e)); Bs[o + 7u] = float16_t(ldexp(bf16_hi(t.w), e));
    }
    barrier();
    [[unroll]] for (uint kk = 0u; kk < BK; kk += LK) {
      A_T a[RM];
      B_T b[RN];
      [[unroll]] for (uint i = 0u; i < RM; i++)
        LOAD_ROWS(a[i], As, (sm * 32u + i * LM) * ASTR + kk, ASTR);
      [[unroll]] for (uint j = 0u; j < RN; j++)
        LOAD_COLS(b[j], Bs, (sn * 32u + j * LN) * ASTR + kk, ASTR);
      [[unroll]] for (uint i = 0u; i < RM; i++)
        [[unroll]] for (uint j = 0u; j < RN; j++) acc[i][j] = MUL_ADD(a[i], b[j], acc[i][j]);
    }
    barrier();
  }
  [[unroll]] for (uint i = 0u; i < RM; i++)
    [[unroll]] for (uint j = 0u; j < RN; j++)
      STORE_ROWS(acc[i][j], Cs, (sm * 32u + i * LM) * CSTR + sn * 32u + j * LN, CSTR);
  barrier();
  for (uint e = tid; e < BM * BN; e += nt) {
    uint r = e / BN, c = e % BN, m = m0 + r, n = n0 + c;
    if (m >= p.M || n >= p.N) continue;
    float v = ldexp(Cs[r * CSTR + c], -(xexp[r] + wexp[c]));
    if ((p.flags & FLAG_BIAS) != 0u) v += BF16_AT(bias, p.b_off + n);
    uint o = p.y_off + m * p.ldy + n;
    if ((p.flags & FLAG_ACC) != 0u) v += y[o];
    y[o] = v;
  }
}
