#version 450
// ARGMAX: one workgroup per row, strided scan then a shared-memory tree; the lowest index wins ties.
// TOPK: the k largest of one row in a single workgroup by radix selection on order-preserving
// keys (4 passes of 8 bits find the k-th key exactly), an ordered compaction (so ties at the
// threshold keep the lowest indices), then a rank sort of the <= 256 survivors.
#include "common.glsl"
layout(local_size_x = 256) in;

#if defined(ARGMAX)
layout(binding = 0) writeonly buffer Out { uint outi[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint rows, n, out_off, x_off; } p;
shared float sv[256];
shared uint si[256];

void main() {
  uint row = jf_group_linear(), lid = gl_LocalInvocationID.x;
  if (row >= p.rows) return;
  uint base = p.x_off + row * p.n;
  float bv = -1.0 / 0.0;
  uint bi = 0xffffffffu;
  for (uint j = lid; j < p.n; j += 256u) {
    float v = x[base + j];
    if (bi == 0xffffffffu || v > bv) { bv = v; bi = j; }
  }
  sv[lid] = bv; si[lid] = bi;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    if (lid < s) {
      float ov = sv[lid + s]; uint oi = si[lid + s];
      if (oi != 0xffffffffu && (si[lid] == 0xffffffffu || ov > sv[lid] || (ov == sv[lid] && oi < si[lid]))) {
        sv[lid] = ov; si[lid] = oi;
      }
    }
    barrier();
  }
  if (lid == 0u) outi[p.out_off + row] = si[0] == 0xffffffffu ? 0u : si[0];
}

#elif defined(TOPK)
layout(binding = 0) writeonly buffer OV { float out_val[]; };
layout(binding = 1) writeonly buffer OI { uint out_idx[]; };
layout(binding = 2) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint n, k, val_off, idx_off, x_off; } p;

shared uint hist[256];
shared uint cnt_gt[256], cnt_eq[256];
shared uint sel_key[256], sel_idx[256];
shared uint s_prefix, s_need;

uint order_key(float f) {
  uint u = floatBitsToUint(f);
  return (u & 0x80000000u) != 0u ? ~u : (u | 0x80000000u);
}

void main() {
  uint lid = gl_LocalInvocationID.x;
  uint chunk = (p.n + 255u) / 256u;
  uint j0 = min(lid * chunk, p.n), j1 = min(j0 + chunk, p.n);
  if (lid == 0u) { s_prefix = 0u; s_need = p.k; }
  uint mask = 0u;
  for (int shift = 24; shift >= 0; shift -= 8) {
    hist[lid] = 0u;
    barrier();
    uint prefix = s_prefix;
    for (uint j = j0; j < j1; j++) {
      uint key = order_key(x[p.x_off + j]);
      if ((key & mask) == prefix) atomicAdd(hist[(key >> uint(shift)) & 255u], 1u);
    }
    barrier();
    if (lid == 0u) {
      uint need = s_need, cum = 0u, bin = 255u;
      for (int b = 255; b >= 0; b--) {
        uint h = hist[b];
        if (cum + h >= need) { bin = uint(b); break; }
        cum += h;
      }
      s_need = need - cum;                 // how many to take from this bin onwards
      s_prefix = prefix | (bin << uint(shift));
    }
    mask |= 255u << uint(shift);
    barrier();
  }
  uint T = s_prefix, need_eq = s_need, n_gt = p.k - need_eq;
  uint gt = 0u, eq = 0u;
  for (uint j = j0; j < j1; j++) {
    uint key = order_key(x[p.x_off + j]);
    gt += key > T ? 1u : 0u;
    eq += key == T ? 1u : 0u;
  }
  cnt_gt[lid] = gt; cnt_eq[lid] = eq;
  barrier();
  if (lid == 0u) {
    uint a = 0u, b = 0u;
    for (uint i = 0u; i < 256u; i++) {
      uint g = cnt_gt[i], e = cnt_eq[i];
      cnt_gt[i] = a; cnt_eq[i] = b;
      a += g; b += e;
    }
  }
  barrier();
  uint pg = cnt_gt[lid], pe = cnt_eq[lid];
  for (uint j = j0; j < j1; j++) {
    uint key = order_key(x[p.x_off + j]);
    if (key > T) { sel_key[pg] = key; sel_idx[pg] = j; pg++; }
    else if (key == T && pe < need_eq) { sel_key[n_gt + pe] = key; sel_idx[n_gt + pe] = j; pe++; }
  }
  barrier();
  if (lid < p.k) {
    uint key = sel_key[lid], idx = sel_idx[lid], rank = 0u;
    for (uint i = 0u; i < p.k; i++) {
      uint ok = sel_key[i];
      if (ok > key || (ok == key && sel_idx[i] < idx)) rank++;
    }
    out_val[p.val_off + rank] = x[p.x_off + idx];
    out_idx[p.idx_off + rank] = idx;
  }
}
#endif
