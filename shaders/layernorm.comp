// LayerNorm over rows: y = (x - mean) / sqrt(var + eps) * w + b, w and b bf16, statistics in fp32.
// One workgroup per row. Two passes (mean, then the variance of x - mean) instead of the
// E[x^2] - E[x]^2 shortcut: activations with a large mean would lose the variance to cancellation.
// Shared-memory reduction, no subgroup ops: lavapipe JITs subgroup-heavy shaders very slowly.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x_id = 0) in;
layout(constant_id = 0) const uint WG = 64;

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { uint w[]; };
layout(std430, binding = 3) readonly buffer B { uint b[]; };

layout(push_constant) uniform P {
  uint rows;
  uint dim;
  float eps;
  uint off_y, off_x, off_w, off_b;  // element offsets of the bound views (see vk/op_util.h)
} p;

shared float red[WG];

float bf16_at(uint i, bool is_w)
{
  uint j = i + (is_w ? p.off_w : p.off_b);
  uint word = is_w ? w[j >> 1] : b[j >> 1];
  return (j & 1u) != 0u ? bf16_hi(word) : bf16_lo(word);
}

// Sum of v over the workgroup; every invocation gets the result.
float wg_sum(float v)
{
  uint t = gl_LocalInvocationID.x;
  red[t] = v;
  barrier();
  for (uint s = WG / 2; s > 0; s >>= 1) {
    if (t < s)
      red[t] += red[t + s];
    barrier();
  }
  float r = red[0];
  barrier();  // red is reused by the next call
  return r;
}

void main()
{
  uint row = gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x;
  if (row >= p.rows)
    return;  // uniform across the workgroup: no barrier is skipped by part of it
  uint t = gl_LocalInvocationID.x;
  uint xb = p.off_x + row * p.dim, yb = p.off_y + row * p.dim;

  float s = 0.0;
  for (uint i = t; i < p.dim; i += WG)
    s += x[xb + i];
  float mean = wg_sum(s) / float(p.dim);

  float v = 0.0;
  for (uint i = t; i < p.dim; i += WG) {
    float d = x[xb + i] - mean;
    v += d * d;
  }
  float rstd = inversesqrt(wg_sum(v) / float(p.dim) + p.eps);

  for (uint i = t; i < p.dim; i += WG)
    y[yb + i] = (x[xb + i] - mean) * rstd * bf16_at(i, true) + bf16_at(i, false);
}
