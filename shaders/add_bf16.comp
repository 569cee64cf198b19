// y[i] = a[i] + float(b[i]) with b bf16 (e.g. a position-embedding table added to fp32 rows), or
// y[i] = float(b[i]) when HAS_A is 0 (bf16 -> fp32 conversion). y may alias a.
#version 450
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;
layout(constant_id = 0) const uint HAS_A = 1;

layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer B { uint b[]; };

layout(push_constant) uniform P {
  uint n;
  uint off_y, off_a, off_b;  // element offsets of the bound views (see vk/op_util.h)
} p;

void main()
{
  uint i = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (i >= p.n)
    return;
  uint j = i + p.off_b;
  uint word = b[j >> 1];
  float v = (j & 1u) != 0u ? bf16_hi(word) : bf16_lo(word);
  y[p.off_y + i] = HAS_A != 0u ? a[p.off_a + i] + v : v;
}
