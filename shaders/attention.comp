#version 450
// Attention with an online (streaming) softmax: one invocation per (sequence, head, query) walks
// the keys it may see, so no score matrix is ever stored. Neighbouring invocations are
// neighbouring queries of one head and read the same keys. K and V come from RGBA32 texel
// buffers ([B, kv_capacity, n_kv_heads*D] fp32); D = 4 * D4 (spec constant 0). Query head h
// reads K/V head h / (n_heads / n_kv_heads) (grouped-query attention; equal counts: plain MHA).
// Blocking several queries per invocation (to share K/V fetches) ran up to 2x faster on lavapipe
// but its LLVM JIT took 15-50 s per head size (q and acc for 4 queries = 1024 live floats).
// SPLIT (decode: few queries): one subgroup per (sequence, head, query); its lanes take every
// S-th key with their own running max/sum/accumulator, merged at the end with subgroup
// reductions. ITEMS (sequence, head, query) triples per workgroup, walked by however many
// subgroups the device makes.
// SCALAR: head sizes that are not whole vec4s (a head would start inside a texel) or above 256:
// the same online kernel over storage buffers, one float at a time, D = spec constant 0. Only
// small test models have such heads, so this form is about being right, not fast.
// KV_F16 (online, SPLIT and SPLITK): K and V are the fp16 cache, eight halves per texel
// (kv.glsl); the math stays fp32.
// SPLITK (decode at long contexts, "flash decoding"): SPLIT gives a GPU only items-many
// subgroups (16 for the LLM's decode) and each streams its whole context. SPLITK cuts each
// item's keys into chunks of p.chunk contiguous keys, one subgroup per (item, chunk) unit, each
// writing a partial softmax to the scratch; COMBINE merges an item's chunks. Scratch layout
// (floats from p.s_off): unit u = item * p.n_chunks + chunk, item numbered as in SPLIT, holds
// D + 2 floats at u * (D + 2): the chunk's max score m, its sum l = sum exp(s - m) and
// acc[D] = sum exp(s - m) v, unnormalised. A chunk that saw no key has l = 0 (m = -inf) and
// COMBINE skips it, so no exp(-inf - -inf) is ever taken.
#include "common.glsl"
#if defined(SPLIT) || defined(SPLITK)
#extension GL_KHR_shader_subgroup_arithmetic : require
#define ITEMS 8u
#endif
#if defined(SPLITK)
// (item, chunk) units per workgroup: the subgroups the device makes of 64 invocations, so that
// every subgroup takes one unit (units are many, and each is short)
layout(constant_id = 1) const uint UNITS = 8u;
#endif
layout(local_size_x = 64) in;
#if defined(SCALAR) || defined(COMBINE)
layout(constant_id = 0) const uint D = 32u;
#else
layout(constant_id = 0) const uint D4 = 32u;
#include "kv.glsl"
#endif

layout(binding = 0) writeonly buffer O { float o[]; };  // SPLITK: the scratch
#if defined(COMBINE)
layout(binding = 1) readonly buffer S { float sc[]; };
#else
layout(binding = 1) readonly buffer Q { float q[]; };
#if defined(SCALAR)
layout(binding = 2) readonly buffer K { float kf[]; };
layout(binding = 3) readonly buffer V { float vf[]; };
#else
layout(binding = 2) uniform usamplerBuffer K;
layout(binding = 3) uniform usamplerBuffer V;
#endif
layout(binding = 4) readonly buffer Mask { int mask[]; };
#endif

// offsets: o/q/mask in elements, k/v in texels (SCALAR: elements); n_b sequences in this
// dispatch; n_kv_heads divides n_heads.
layout(push_constant) uniform P {
  uint n_b, n_q, n_heads, q_start, n_kv, kv_cap, causal, has_mask;
  float scale;
  uint o_off, q_off, k_off, v_off, mask_off, n_kv_heads;
#if defined(SPLITK) || defined(COMBINE)
  uint n_chunks, chunk, s_off;  // chunks per item, keys per chunk, scratch offset (floats)
#endif
} p;

#if defined(SPLIT) || defined(SPLITK)
void main() {
  uint S = gl_SubgroupSize, lane = gl_SubgroupInvocationID;
#if defined(SPLITK)
  uint total = p.n_b * p.n_heads * p.n_q * p.n_chunks, wg0 = jf_group_linear() * UNITS;
  for (uint u = wg0 + gl_SubgroupID; u < min(wg0 + UNITS, total); u += gl_NumSubgroups) {
    uint id = u / p.n_chunks, k0 = (u % p.n_chunks) * p.chunk;
#else
  uint total = p.n_b * p.n_heads * p.n_q, wg0 = jf_group_linear() * ITEMS;
  for (uint id = wg0 + gl_SubgroupID; id < min(wg0 + ITEMS, total); id += gl_NumSubgroups) {
    const uint k0 = 0u;
#endif
    uint qi = id % p.n_q, bh = id / p.n_q;
    uint h = bh % p.n_heads, b = bh / p.n_heads, hk = h / (p.n_heads / p.n_kv_heads);
    uint row_t = p.n_kv_heads * KV_T;  // texels per K/V row
    uint qbase = p.q_off + ((b * p.n_q + qi) * p.n_heads + h) * D4 * 4u;
    vec4 qv[D4], acc[D4];
    for (uint d = 0u; d < D4; d++) {
      uint e = qbase + 4u * d;
      qv[d] = vec4(q[e], q[e + 1u], q[e + 2u], q[e + 3u]) * p.scale;
      acc[d] = vec4(0.0);
    }
    uint kend = p.n_kv;
    if (p.causal != 0u) kend = min(kend, p.q_start + qi + 1u);
#if defined(SPLITK)
    kend = min(kend, k0 + p.chunk);
#endif
    float m = -1.0 / 0.0, l = 0.0;
    for (uint j = k0 + lane; j < kend; j += S) {
      if (p.has_mask != 0u && mask[p.mask_off + b * p.kv_cap + j] == 0) continue;
      int kb = int((b * p.kv_cap + j) * row_t + hk * KV_T);
      vec4 sv = vec4(0.0);
      KV_DOT(sv, qv, K, int(p.k_off) + kb)
      float s = (sv.x + sv.y) + (sv.z + sv.w);
      if (s > m) {
        float c = exp(m - s);
        l *= c;
        for (uint d = 0u; d < D4; d++) acc[d] *= c;
        m = s;
      }
      float pj = exp(s - m);
      l += pj;
      KV_AXPY(acc, pj, V, int(p.v_off) + kb)
    }
    float mall = subgroupMax(m);
    float f = m > -1.0 / 0.0 ? exp(m - mall) : 0.0;  // lanes that saw no key contribute nothing
    float lall = subgroupAdd(l * f);
#if defined(SPLITK)
    // the partial as it stands; lanes take turns writing its vec4s
    uint sb = p.s_off + u * (D4 * 4u + 2u);
    if (lane == 0u) {
      o[sb] = mall;
      o[sb + 1u] = lall;
    }
    for (uint d = 0u; d < D4; d++) {
      vec4 r = subgroupAdd(acc[d] * f);
      if (lane == d % S) {
        uint e = sb + 2u + 4u * d;
        o[e] = r.x; o[e + 1u] = r.y; o[e + 2u] = r.z; o[e + 3u] = r.w;
      }
    }
#else
    float inv = lall > 0.0 ? 1.0 / lall : 0.0;
    uint ob = p.o_off + ((b * p.n_q + qi) * p.n_heads + h) * D4 * 4u;
    for (uint d = 0u; d < D4; d++) {
      vec4 r = subgroupAdd(acc[d] * f) * inv;
      if (lane == 0u) {
        o[ob + 4u * d] = r.x; o[ob + 4u * d + 1u] = r.y; o[ob + 4u * d + 2u] = r.z; o[ob + 4u * d + 3u] = r.w;
      }
    }
#endif
  }
}
#elif defined(COMBINE)
// One invocation per (item, vec4 of features): M = max m_c, L = sum l_c e^(m_c - M),
// out = sum acc_c e^(m_c - M) / L over the chunks that saw a key (l_c > 0); none: zeros.
void main() {
  uint D4 = D / 4u;
  uint gid = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (gid >= p.n_b * p.n_heads * p.n_q * D4) return;
  uint id = gid / D4, d = gid % D4;
  uint qi = id % p.n_q, bh = id / p.n_q;
  uint h = bh % p.n_heads, b = bh / p.n_heads;
  uint rec = D + 2u, r0 = p.s_off + id * p.n_chunks * rec;
  float mx = 0.0;
  bool any = false;
  for (uint c = 0u; c < p.n_chunks; c++) {
    uint r = r0 + c * rec;
    if (sc[r + 1u] > 0.0) {
      mx = any ? max(mx, sc[r]) : sc[r];
      any = true;
    }
  }
  float lsum = 0.0;
  vec4 acc = vec4(0.0);
  for (uint c = 0u; any && c < p.n_chunks; c++) {
    uint r = r0 + c * rec;
    float l = sc[r + 1u];
    if (l > 0.0) {
      float w = exp(sc[r] - mx);
      uint e = r + 2u + 4u * d;
      lsum += l * w;
      acc += w * vec4(sc[e], sc[e + 1u], sc[e + 2u], sc[e + 3u]);
    }
  }
  vec4 res = lsum > 0.0 ? acc / lsum : vec4(0.0);
  uint ob = p.o_off + ((b * p.n_q + qi) * p.n_heads + h) * D + 4u * d;
  o[ob] = res.x; o[ob + 1u] = res.y; o[ob + 2u] = res.z; o[ob + 3u] = res.w;
}
#elif defined(SCALAR)
void main() {
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.n_b * p.n_heads * p.n_q) return;
  uint qi = id % p.n_q, bh = id / p.n_q;
  uint h = bh % p.n_heads, b = bh / p.n_heads, hk = h / (p.n_heads / p.n_kv_heads);
  uint row = p.n_kv_heads * D;  // floats per K/V row
  uint qbase = p.q_off + ((b * p.n_q + qi) * p.n_heads + h) * D;

  float qv[D], acc[D];
  for (uint d = 0u; d < D; d++) {
    qv[d] = q[qbase + d] * p.scale;
    acc[d] = 0.0;
  }
  uint kend = p.n_kv;
  if (p.causal != 0u) kend = min(kend, p.q_start + qi + 1u);
  float m = -1.0 / 0.0, l = 0.0;
  uint kb = b * p.kv_cap * row + hk * D;
  for (uint j = 0u; j < kend; j++, kb += row) {
    if (p.has_mask != 0u && mask[p.mask_off + b * p.kv_cap + j] == 0) continue;
    float s = 0.0;
    for (uint d = 0u; d < D; d++) s += qv[d] * kf[p.k_off + kb + d];
    if (s > m) {
      float c = exp(m - s);  // 0 for the first key seen
      l *= c;
      for (uint d = 0u; d < D; d++) acc[d] *= c;
      m = s;
    }
    float pj = exp(s - m);
    l += pj;
    for (uint d = 0u; d < D; d++) acc[d] += pj * vf[p.v_off + kb + d];
  }
  float inv = l > 0.0 ? 1.0 / l : 0.0;
  uint ob = p.o_off + ((b * p.n_q + qi) * p.n_heads + h) * D;
  for (uint d = 0u; d < D; d++) o[ob + d] = acc[d] * inv;
}
#else
void main() {
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.n_b * p.n_heads * p.n_q) return;
  uint qi = id % p.n_q, bh = id / p.n_q;
  uint h = bh % p.n_heads, b = bh / p.n_heads, hk = h / (p.n_heads / p.n_kv_heads);
  uint row_t = p.n_kv_heads * KV_T;  // texels per K/V row
  uint qbase = p.q_off + ((b * p.n_q + qi) * p.n_heads + h) * D4 * 4u;

  vec4 qv[D4], acc[D4];
  for (uint d = 0u; d < D4; d++) {
    uint e = qbase + 4u * d;
    qv[d] = vec4(q[e], q[e + 1u], q[e + 2u], q[e + 3u]) * p.scale;
    acc[d] = vec4(0.0);
  }
  uint kend = p.n_kv;
  if (p.causal != 0u) kend = min(kend, p.q_start + qi + 1u);
  float m = -1.0 / 0.0, l = 0.0;
  int kb = int(b * p.kv_cap * row_t + hk * KV_T);
  for (uint j = 0u; j < kend; j++, kb += int(row_t)) {
    if (p.has_mask != 0u && mask[p.mask_off + b * p.kv_cap + j] == 0) continue;
    vec4 sv = vec4(0.0);
    KV_DOT(sv, qv, K, int(p.k_off) + kb)
    float s = (sv.x + sv.y) + (sv.z + sv.w);
    if (s > m) {
      float c = exp(m - s);  // 0 for the first key seen
      l *= c;
      for (uint d = 0u; d < D4; d++) acc[d] *= c;
      m = s;
    }
    float pj = exp(s - m);
    l += pj;
    KV_AXPY(acc, pj, V, int(p.v_off) + kb)
  }
  float inv = l > 0.0 ? 1.0 / l : 0.0;
  uint ob = p.o_off + ((b * p.n_q + qi) * p.n_heads + h) * D4 * 4u;
  for (uint d = 0u; d < D4; d++) {
    vec4 r = acc[d] * inv;
    o[ob + 4u * d] = r.x; o[ob + 4u * d + 1u] = r.y; o[ob + 4u * d + 2u] = r.z; o[ob + 4u * d + 3u] = r.w;
  }
}
#endif
