#version 450
// Rotary embedding in place, HF rotate-half layout. One invocation per (row, i < D/2): the angle,
// its cosine and sine (the expensive part) are computed once and applied to every head.
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) buffer X { float x[]; };
layout(binding = 1) readonly buffer Pos { int pos[]; };
layout(push_constant) uniform P { uint rows, row_stride, n_heads, head_dim, x_off, pos_off; float log2_theta; } p;

void main() {
  uint half_d = p.head_dim / 2u;
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.rows * half_d) return;
  uint r = id / half_d, i = id - r * half_d;
  // inv_freq = theta^(-2i/D) in fp32 like torch; angle = pos * inv_freq rounded to fp32
  float inv_freq = exp2(-float(2u * i) / float(p.head_dim) * p.log2_theta);
  float ang = float(pos[p.pos_off + r]) * inv_freq;
  float c = cos(ang), s = sin(ang);
  uint base = p.x_off + r * p.row_stride + i;
  for (uint h = 0u; h < p.n_heads; h++, base += p.head_dim) {
    float a = x[base], b = x[base + half_d];
    x[base] = a * c - b * s;
    x[base + half_d] = b * c + a * s;
  }
}
