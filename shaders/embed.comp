#version 450
// Embedding lookup from a bf16 table bound in row windows [v0, v0 + vw). One invocation per
// output element; ids outside the window are left alone, except that the first window also
// writes zeros for ids outside [0, vocab).
#include "common.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) readonly buffer T { uint t[]; };
layout(binding = 2) readonly buffer Ids { int ids[]; };
layout(push_constant) uniform P { uint n, dim, vocab, v0, vw, y_off, t_off, ids_off, first; } p;

void main() {
  uint id = jf_group_linear() * 256u + gl_LocalInvocationID.x;
  if (id >= p.n * p.dim) return;
  uint row = id / p.dim, c = id - row * p.dim;
  int tok = ids[p.ids_off + row];
  if (tok < 0 || uint(tok) >= p.vocab) {
    if (p.first != 0u) y[p.y_off + id] = 0.0;
    return;
  }
  uint rel = uint(tok) - p.v0;
  if (uint(tok) < p.v0 || rel >= p.vw) return;
  uint e = p.t_off + rel * p.dim + c;
  y[p.y_off + id] = BF16_AT(t, e);
}
