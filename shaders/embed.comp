#version 450
// Embedding lookup from a bf16 table bound in row windows [v0, v0 + vw). One invocation per
// (row, chunk of CH values): ids outside the window leave the row alone, except that the first
// window also writes zeros for ids outside [0, vocab).
// TEX: the table is an RGBA32UI texel buffer (8 bf16 per texel; dim % 8 == 0, t_off in texels),
// which on most devices covers the whole 400 MiB table in one window. Otherwise a storage
// buffer of bf16 pairs (any dim; t_off in bf16 elements).
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) buffer Y { float y[]; };
#if defined(TEX)
layout(binding = 1) uniform usamplerBuffer T;
#define CH 8u
#else
layout(binding = 1) readonly buffer Tb { uint t[]; };
#define CH 32u
#endif
layout(binding = 2) readonly buffer Ids { int ids[]; };
layout(push_constant) uniform P { uint n, dim, vocab, v0, vw, y_off, t_off, ids_off, first; } p;

void main() {
  uint chunks = (p.dim + CH - 1u) / CH;
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.n * chunks) return;
  uint row = id / chunks, c0 = (id - row * chunks) * CH;
  uint yb = p.y_off + row * p.dim + c0;
  int tok = ids[p.ids_off + row];
  if (tok < 0 || uint(tok) >= p.vocab) {
    if (p.first != 0u)
      for (uint c = 0u; c < CH && c0 + c < p.dim; c++) y[yb + c] = 0.0;
    return;
  }
  uint rel = uint(tok) - p.v0;
  if (uint(tok) < p.v0 || rel >= p.vw) return;
#if defined(TEX)
  uvec4 v = texelFetch(T, int(p.t_off + (rel * p.dim + c0) / 8u));
  y[yb + 0u] = bf16_lo(v.x); y[yb + 1u] = bf16_hi(v.x);
  y[yb + 2u] = bf16_lo(v.y); y[yb + 3u] = bf16_hi(v.y);
  y[yb + 4u] = bf16_lo(v.z); y[yb + 5u] = bf16_hi(v.z);
  y[yb + 6u] = bf16_lo(v.w); y[yb + 7u] = bf16_hi(v.w);
#else
  uint e = p.t_off + rel * p.dim + c0;
  for (uint c = 0u; c < CH && c0 + c < p.dim; c++) y[yb + c] = BF16_AT(t, e + c);
#endif
}
