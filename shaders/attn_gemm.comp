#version 450
#extension GL_EXT_control_flow_attributes : require
// Attention as two GEMMs and a row softmax, for CPU devices (lavapipe) and many queries. The
// online kernel (attention.comp) fetches 2 x head_dim/4 texels per key for 4 x head_dim FLOPs,
// and its per-key rescale branches; here a lane owns a 16 x 8 (QK) or 16 x 16 (PV) tile, so one
// texel fetch feeds about 21 (QK) or 32 (PV) multiply-adds, as in the GEMM kernel (matmul.comp
// GEMM_TEX, PLATFORM.md: texel loads, big register tiles, no shared memory or barriers). Scores of a chunk of query
// rows go through a scratch buffer: S [n_b * n_heads][rows][s_ld] (s_ld: n_kv rounded up to
// 16), then one float per row (1 / the softmax sum).
//   QK       S = scale * q k^T for each (sequence, head), -inf where the key is hidden (causal
//            limit, key mask); lanes along keys. Tiles wholly past the causal limit are skipped
//            (SOFTMAX never reads them). Stores are whole vec4s (llvmpipe runs every storage-
//            buffer access as a loop over the lanes).
//   SOFTMAX  one invocation per row over the texels up to its causal limit: max, then
//            S = exp(s - max) and the row's 1 / sum; 0 from there to where PV stops reading
//            (the limit of the last row of the 16-row tile, in whole texels of 4 keys). A row
//            that sees no key is all 0 (as the online kernel).
//   PV       o = (S v) / sum; a lane owns 16 rows x 16 head features (4 texels) and loops over
//            the keys up to the causal limit of its last row.
// Q (texels [B, n_q, n_heads, D4]) and K/V (texels [B, kv_cap, n_kv_heads, D4]) as in
// attention.comp; query head h reads K/V head h / (n_heads / n_kv_heads). Offsets: q/k/v/s in
// texels (s as vec4s; st_off: the texel view of S), o and inv (the 1 / sums, in the scratch
// after S) in floats, the mask in ints.
// KV_F16 (QK, PV): K and V are the fp16 cache, eight halves per texel (kv.glsl); the math stays
// fp32, in the same order.
#include "common.glsl"

layout(constant_id = 0) const uint D4 = 32u;
#include "kv.glsl"
#define TM 16u  // PV's rows per lane (and the row tile SOFTMAX zeroes for)

layout(push_constant) uniform P {
  uint n_b, n_heads, n_kv_heads, rows, q0, n_q, q_start, n_kv;
  uint kv_cap, causal, has_mask, s_ld;
  float scale;
  uint o_off, q_off, k_off, v_off, s_off, mask_off, inv_off, st_off;
} p;

// Last key (exclusive) that query row r of the chunk sees.
uint key_end(uint r) { return p.causal != 0u ? min(p.n_kv, p.q_start + p.q0 + r + 1u) : p.n_kv; }

#if defined(QK)
layout(local_size_x = 16) in;
#define QM 16u
#define QN 8u
layout(binding = 0) writeonly buffer S { vec4 s4[]; };
layout(binding = 1) uniform usamplerBuffer Q;
layout(binding = 2) uniform usamplerBuffer K;
layout(binding = 3) readonly buffer Mask { int mask[]; };

void main() {
  uint j0 = (gl_WorkGroupID.x * 16u + gl_LocalInvocationID.x) * QN;
  uint r0 = gl_WorkGroupID.y * QM, bh = gl_WorkGroupID.z;
  if (j0 >= p.n_kv || r0 >= p.rows) return;
  uint rlast = min(r0 + QM, p.rows) - 1u;
  if (j0 >= key_end(rlast)) return;  // every row of the tile is past the causal limit
  uint h = bh % p.n_heads, b = bh / p.n_heads, hk = h / (p.n_heads / p.n_kv_heads);
  int qrow[QM], krow[QN];
  [[unroll]] for (uint i = 0u; i < QM; i++)
    qrow[i] = int(p.q_off + ((b * p.n_q + p.q0 + min(r0 + i, rlast)) * p.n_heads + h) * D4);
  [[unroll]] for (uint j = 0u; j < QN; j++)
    krow[j] = int(p.k_off + ((b * p.kv_cap + min(j0 + j, p.n_kv - 1u)) * p.n_kv_heads + hk) * KV_T);
  // acc[i][c]: row i, keys j0 + 4c .. j0 + 4c + 3 (whole vec4s: plain FMAs and vec4 stores)
  vec4 acc[QM][QN / 4u];
  [[unroll]] for (uint i = 0u; i < QM; i++)
    [[unroll]] for (uint c = 0u; c < QN / 4u; c++) acc[i][c] = vec4(0.0);
  for (uint t = 0u; t < KV_T; t++) {
    uvec4 kt[QN];  // texel t of each key's head
    [[unroll]] for (uint j = 0u; j < QN; j++) kt[j] = texelFetch(K, krow[j] + int(t));
    [[unroll]] for (uint hv = 0u; hv < KV_PER; hv++) {
      uint d = t * KV_PER + hv;
      vec4 kx[QN / 4u], ky[QN / 4u], kz[QN / 4u], kw[QN / 4u];  // feature 4d + 0..3 of 4 keys
      [[unroll]] for (uint c = 0u; c < QN / 4u; c++) {
        vec4 k0 = kv_vec4(kt[4u * c], hv);
        vec4 k1 = kv_vec4(kt[4u * c + 1u], hv);
        vec4 k2 = kv_vec4(kt[4u * c + 2u], hv);
        vec4 k3 = kv_vec4(kt[4u * c + 3u], hv);
        kx[c] = vec4(k0.x, k1.x, k2.x, k3.x);
        ky[c] = vec4(k0.y, k1.y, k2.y, k3.y);
        kz[c] = vec4(k0.z, k1.z, k2.z, k3.z);
        kw[c] = vec4(k0.w, k1.w, k2.w, k3.w);
      }
      [[unroll]] for (uint i = 0u; i < QM; i++) {
        vec4 qv = uintBitsToFloat(texelFetch(Q, qrow[i] + int(d)));
        [[unroll]] for (uint c = 0u; c < QN / 4u; c++)
          acc[i][c] += qv.x * kx[c] + qv.y * ky[c] + qv.z * kz[c] + qv.w * kw[c];
      }
    }
  }
  // keys this tile's columns hide for every row: past n_kv, or masked
  bvec4 hide[QN / 4u];
  [[unroll]] for (uint c = 0u; c < QN / 4u; c++)
    [[unroll]] for (uint e = 0u; e < 4u; e++) {
      uint j = j0 + 4u * c + e;
      hide[c][e] = j >= p.n_kv || (p.has_mask != 0u && mask[p.mask_off + b * p.kv_cap + min(j, p.n_kv - 1u)] == 0);
    }
  const vec4 ninf = vec4(-1.0 / 0.0);
  [[unroll]] for (uint i = 0u; i < QM; i++) {
    if (r0 + i > rlast) break;
    uint kend = key_end(r0 + i), base = p.s_off + ((bh * p.rows + r0 + i) * p.s_ld + j0) / 4u;
    [[unroll]] for (uint c = 0u; c < QN / 4u; c++) {
      uvec4 j = uvec4(j0 + 4u * c) + uvec4(0u, 1u, 2u, 3u);
      bvec4 off = bvec4(uvec4(hide[c]) | uvec4(greaterThanEqual(j, uvec4(kend))));
      s4[base + c] = mix(acc[i][c] * p.scale, ninf, off);
    }
  }
}

#elif defined(SOFTMAX)
// S is read through a texel binding (llvmpipe gathers texel fetches 8 lanes at a time; storage
// loads go lane by lane) and written through a storage one; each element is read before it is
// written and never again.
layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer S { vec4 s4[]; };
layout(binding = 1) writeonly buffer Inv { float inv[]; };
layout(binding = 2) uniform usamplerBuffer St;

void main() {
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.n_b * p.n_heads * p.rows) return;
  uint r = id % p.rows, row4 = id * (p.s_ld / 4u);
  int tbase = int(p.st_off + row4);
  uint base = p.s_off + row4, n4 = (key_end(r) + 3u) / 4u;
  // PV reads this row up to the causal limit of the last row of its 16-row tile
  uint z4 = (key_end(min((r / TM) * TM + TM, p.rows) - 1u) + 3u) / 4u;
  vec4 mv = vec4(-1.0 / 0.0);
  for (uint j = 0u; j < n4; j++) mv = max(mv, uintBitsToFloat(texelFetch(St, tbase + int(j))));
  float m = max(max(mv.x, mv.y), max(mv.z, mv.w)), l = 0.0;
  if (m == -1.0 / 0.0) {
    n4 = 0u;  // sees no key: all 0
  } else {
    for (uint j = 0u; j < n4; j++) {
      vec4 e = exp(uintBitsToFloat(texelFetch(St, tbase + int(j))) - m);
      l += (e.x + e.y) + (e.z + e.w);
      s4[base + j] = e;
    }
  }
  for (uint j = n4; j < z4; j++) s4[base + j] = vec4(0.0);
  inv[p.inv_off + id] = l > 0.0 ? 1.0 / l : 0.0;
}

#elif defined(PV)
layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer O { float o[]; };
layout(binding = 1) uniform usamplerBuffer S;
layout(binding = 2) uniform usamplerBuffer V;
layout(binding = 3) readonly buffer Inv { float inv[]; };
#define TD 4u  // texels of head features per lane

void main() {
  uint n_dt = (D4 + TD - 1u) / TD, n_rt = (p.rows + TM - 1u) / TM;
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.n_b * p.n_heads * n_rt * n_dt) return;
  uint dt = id % n_dt, rt = (id / n_dt) % n_rt, bh = id / (n_dt * n_rt);
  uint h = bh % p.n_heads, b = bh / p.n_heads, hk = h / (p.n_heads / p.n_kv_heads);
  uint r0 = rt * TM, rlast = min(r0 + TM, p.rows) - 1u, d0 = dt * TD;
  uint kend = key_end(rlast), s_ld4 = p.s_ld / 4u;
  // the lane's TD feature vec4s d0 .. d0 + TD - 1 are TD / KV_PER texels of a V row (d0 is a
  // multiple of TD, so of KV_PER)
  const uint TT = TD / KV_PER;
  int prow[TM], dcol[TT];
  [[unroll]] for (uint i = 0u; i < TM; i++)
    prow[i] = int(p.s_off + (bh * p.rows + min(r0 + i, rlast)) * s_ld4);
  [[unroll]] for (uint c = 0u; c < TT; c++) dcol[c] = int(p.v_off + hk * KV_T + min(d0 / KV_PER + c, KV_T - 1u));
  vec4 acc[TM][TD];
  [[unroll]] for (uint i = 0u; i < TM; i++)
    [[unroll]] for (uint c = 0u; c < TD; c++) acc[i][c] = vec4(0.0);
  uint vstride = p.n_kv_heads * KV_T;
  for (uint j4 = 0u; 4u * j4 < kend; j4++) {
    vec4 vv[4][TD];  // keys 4 j4 .. 4 j4 + 3 (clamped: their P is 0)
    [[unroll]] for (uint t = 0u; t < 4u; t++) {
      int vrow = int((b * p.kv_cap + min(4u * j4 + t, p.n_kv - 1u)) * vstride);
      [[unroll]] for (uint c = 0u; c < TT; c++) {
        uvec4 w = texelFetch(V, vrow + dcol[c]);
        [[unroll]] for (uint hv = 0u; hv < KV_PER; hv++) vv[t][c * KV_PER + hv] = kv_vec4(w, hv);
      }
    }
    [[unroll]] for (uint i = 0u; i < TM; i++) {
      vec4 pr = uintBitsToFloat(texelFetch(S, prow[i] + int(j4)));
      [[unroll]] for (uint c = 0u; c < TD; c++)
        acc[i][c] += pr.x * vv[0][c] + pr.y * vv[1][c] + pr.z * vv[2][c] + pr.w * vv[3][c];
    }
  }
  [[unroll]] for (uint i = 0u; i < TM; i++) {
    if (r0 + i > rlast) break;
    uint ob = p.o_off + ((b * p.n_q + p.q0 + r0 + i) * p.n_heads + h) * D4 * 4u;
    float f = inv[p.inv_off + bh * p.rows + r0 + i];
    [[unroll]] for (uint c = 0u; c < TD; c++) {
      if (d0 + c >= D4) break;
      vec4 r = acc[i][c] * f;
      uint e = ob + 4u * (d0 + c);
      o[e] = r.x; o[e + 1u] = r.y; o[e + 2u] = r.z; o[e + 3u] = r.w;
    }
  }
}
#endif
