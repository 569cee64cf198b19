#version 450
// Flash attention for GPUs (prefill, the image block): same inputs, outputs and semantics as
// attention.comp (vkrt_op_attention in vk/ops.h: causal, mask, q_start, n_kv, a query that sees
// no key gets zeros). One workgroup takes BR queries of one (sequence, head); tiles of BC keys
// of K and then V are staged in shared memory and read by all BR queries, so each K/V row is
// fetched from memory once per BR queries instead of once per query. Per tile:
//   1. K tile -> shared;  2. scores S = (q * scale) . k for the BR x BC pairs (-inf where the
//   key is hidden);  3. per query, the online-softmax update in fp32 (running max m, sum l,
//   rescale factor alpha; S becomes exp(S - m)), while the V tile replaces K in shared memory;
//   4. O = O * alpha + S . V, O kept in registers, BR * D/4 vec4s spread over the workgroup.
// D = 4 * D4 up to 256; BR, BC and the workgroup size are specialization constants chosen in
// vk/op_attention.c so that shared memory (Q, one K/V tile, S) fits the device. K/V rows hold
// n_kv_heads heads; query head h reads head h / (n_heads / n_kv_heads).
// K/V rows are padded by one vec4 so that threads reading different keys at the same d hit
// different banks. No subgroup operations (lavapipe JITs them slowly; the tests run this).
// KV_F16: K and V are the fp16 cache (kv.glsl), widened to fp32 as a tile is staged.
#include "common.glsl"

layout(local_size_x_id = 3) in;
layout(constant_id = 0) const uint D4 = 32u;
layout(constant_id = 1) const uint BR = 32u;
layout(constant_id = 2) const uint BC = 32u;
#include "kv.glsl"
const uint KST = D4 + 1u;                                  // K/V row stride in vec4s
const uint NACC = (BR * D4 + gl_WorkGroupSize.x - 1u) / gl_WorkGroupSize.x;

layout(binding = 0) writeonly buffer O { float o[]; };
layout(binding = 1) readonly buffer Q { float q[]; };
layout(binding = 2) uniform usamplerBuffer K;
layout(binding = 3) uniform usamplerBuffer V;
layout(binding = 4) readonly buffer Mask { int mask[]; };

layout(push_constant) uniform P {
  uint n_b, n_q, n_heads, q_start, n_kv, kv_cap, causal, has_mask;
  float scale;
  uint o_off, q_off, k_off, v_off, mask_off, n_kv_heads;
} p;

shared vec4 Qs[BR * D4];
shared vec4 KVs[BC * KST];
shared float S[BR * BC];
shared float m_s[BR], l_s[BR], alpha_s[BR];

// Keys j0 .. j0 + BC - 1 of the K or V head starting at texel base (rows of row_t texels) into
// KVs; keys past kend are zeros (never used, and never read past the binding).
void stage_tile(usamplerBuffer T, int base, uint row_t, uint j0, uint kend)
{
  for (uint e = gl_LocalInvocationID.x; e < BC * KV_T; e += gl_WorkGroupSize.x) {
    uint c = e / KV_T, t = e % KV_T;
    uvec4 w = j0 + c < kend ? texelFetch(T, base + int((j0 + c) * row_t + t)) : uvec4(0u);
    for (uint i = 0u; i < KV_PER; i++) KVs[c * KST + t * KV_PER + i] = kv_vec4(w, i);
  }
}

void main() {
  uint WG = gl_WorkGroupSize.x, tid = gl_LocalInvocationID.x;
  uint nqb = (p.n_q + BR - 1u) / BR;
  uint wg = jf_group_linear();
  if (wg >= p.n_b * p.n_heads * nqb) return;  // whole workgroups only
  uint qb = wg % nqb, bh = wg / nqb;
  uint h = bh % p.n_heads, b = bh / p.n_heads;
  uint q0 = qb * BR, qn = min(BR, p.n_q - q0);
  uint hk = h / (p.n_heads / p.n_kv_heads);  // the K/V head (grouped-query attention)
  uint row_t = p.n_kv_heads * KV_T;           // texels per K/V row
  int kv0 = int(p.k_off + b * p.kv_cap * row_t + hk * KV_T), vv0 = int(p.v_off + b * p.kv_cap * row_t + hk * KV_T);
  // keys any of these queries may see
  uint kend = p.n_kv;
  if (p.causal != 0u) kend = min(kend, p.q_start + q0 + qn);

  for (uint e = tid; e < BR * D4; e += WG) {
    uint r = e / D4, d = e % D4;
    vec4 v = vec4(0.0);
    if (r < qn) {
      uint qe = p.q_off + ((b * p.n_q + q0 + r) * p.n_heads + h) * D4 * 4u + 4u * d;
      v = vec4(q[qe], q[qe + 1u], q[qe + 2u], q[qe + 3u]) * p.scale;
    }
    Qs[e] = v;
  }
  for (uint r = tid; r < BR; r += WG) {
    m_s[r] = -1.0 / 0.0;
    l_s[r] = 0.0;
  }
  vec4 acc[NACC];
  for (uint i = 0u; i < NACC; i++) acc[i] = vec4(0.0);
  barrier();  // Qs, m_s and l_s are read by other threads (l_s even when there is no key)

  for (uint j0 = 0u; j0 < kend; j0 += BC) {
    // 1. K tile
    stage_tile(K, kv0, row_t, j0, kend);
    barrier();
    // 2. scores
    for (uint e = tid; e < BR * BC; e += WG) {
      uint r = e / BC, c = e % BC, j = j0 + c;
      bool vis = r < qn && j < kend && (p.causal == 0u || j <= p.q_start + q0 + r) &&
                 (p.has_mask == 0u || mask[p.mask_off + b * p.kv_cap + j] != 0);
      float s = -1.0 / 0.0;
      if (vis) {
        vec4 sv = vec4(0.0);
        for (uint d = 0u; d < D4; d++) sv += Qs[r * D4 + d] * KVs[c * KST + d];
        s = (sv.x + sv.y) + (sv.z + sv.w);
      }
      S[e] = s;
    }
    barrier();
    // 3. online softmax per query; V replaces K
    for (uint r = tid; r < BR; r += WG) {
      float mo = m_s[r], mx = mo;
      for (uint c = 0u; c < BC; c++) mx = max(mx, S[r * BC + c]);
      if (mx == -1.0 / 0.0) {
        // nothing visible yet: no weights, nothing to rescale (exp(-inf - -inf) would be NaN)
        for (uint c = 0u; c < BC; c++) S[r * BC + c] = 0.0;
        alpha_s[r] = 1.0;
      } else {
        float a = exp(mo - mx), sum = 0.0;  // a = 0 for the first visible key
        for (uint c = 0u; c < BC; c++) {
          float pj = exp(S[r * BC + c] - mx);
          S[r * BC + c] = pj;
          sum += pj;
        }
        m_s[r] = mx;
        l_s[r] = l_s[r] * a + sum;
        alpha_s[r] = a;
      }
    }
    stage_tile(V, vv0, row_t, j0, kend);
    barrier();
    // 4. O = O * alpha + P . V
    for (uint i = 0u; i < NACC; i++) {
      uint e = tid + i * WG;
      if (e < BR * D4) {
        uint r = e / D4, d = e % D4;
        vec4 a = acc[i] * alpha_s[r];
        for (uint c = 0u; c < BC; c++) a += S[r * BC + c] * KVs[c * KST + d];
        acc[i] = a;
      }
    }
    barrier();  // S and KVs are rewritten by the next tile
  }
  for (uint i = 0u; i < NACC; i++) {
    uint e = tid + i * WG;
    if (e >= BR * D4) break;
    uint r = e / D4, d = e % D4;
    if (r >= qn) continue;
    float l = l_s[r];
    vec4 v = acc[i] * (l > 0.0 ? 1.0 / l : 0.0);
    uint oe = p.o_off + ((b * p.n_q + q0 + r) * p.n_heads + h) * D4 * 4u + 4u * d;
    o[oe] = v.x; o[oe + 1u] = v.y; o[oe + 2u] = v.z; o[oe + 3u] = v.w;
  }
}
