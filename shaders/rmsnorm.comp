#version 450
// RMSNorm, one invocation per row (per-row reductions with barriers are slow on lavapipe).
// y may alias x: a row is fully read before it is written.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) readonly buffer X { float x[]; };
layout(binding = 2) readonly buffer W { uint w[]; };
layout(push_constant) uniform P { uint rows, dim, y_off, x_off, w_off; float eps; } p;

void main() {
  uint r = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (r >= p.rows) return;
  uint xb = p.x_off + r * p.dim, yb = p.y_off + r * p.dim;
  // four partial sums: shorter dependency chains and a little less rounding
  vec4 s = vec4(0.0);
  uint d4 = p.dim & ~3u;
  for (uint i = 0u; i < d4; i += 4u) {
    vec4 v = vec4(x[xb + i], x[xb + i + 1u], x[xb + i + 2u], x[xb + i + 3u]);
    s += v * v;
  }
  for (uint i = d4; i < p.dim; i++) s.x += x[xb + i] * x[xb + i];
  float ss = (s.x + s.y) + (s.z + s.w);
  float inv = 1.0 / sqrt(ss / float(p.dim) + p.eps);
  for (uint i = 0u; i < p.dim; i++) {
    uint e = p.w_off + i;
    y[yb + i] = x[xb + i] * inv * BF16_AT(w, e);
  }
}
