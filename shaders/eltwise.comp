#version 450
// Element-wise ops on fp32 vectors: OP_ADD (y = a + b), OP_SILU_MUL (y = silu(a) * b),
// OP_GELU (y = gelu_erf(a)), OP_SILU (y = silu(a)); the last two are matmul epilogues.
// Bindings may alias (y == a is allowed): each invocation reads its elements before writing them.
#include "common.glsl"
layout(local_size_x = 256) in;
layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) readonly buffer A { float a[]; };
layout(binding = 2) readonly buffer B { float b[]; };
layout(push_constant) uniform P { uint n, y_off, a_off, b_off; } p;

void main() {
  uint i = jf_group_linear() * 256u + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  float va = a[p.a_off + i];
#if defined(OP_GELU)
  y[p.y_off + i] = jf_gelu(va);
#elif defined(OP_SILU)
  y[p.y_off + i] = jf_silu(va);
#else
  float vb = b[p.b_off + i];
#endif
#if defined(OP_ADD)
  y[p.y_off + i] = va + vb;
#elif defined(OP_SILU_MUL)
  y[p.y_off + i] = jf_silu(va) * vb;
#endif
}
