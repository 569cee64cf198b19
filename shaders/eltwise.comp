#version 450
// Element-wise ops on fp32 vectors: OP_ADD (y = a + b), OP_SILU_MUL (y = silu(a) * b),
// OP_GELU (y = gelu_erf(a)), OP_SILU (y = silu(a)); the last two are matmul epilogues.
// VEC4: four elements per invocation, a and b read as RGBA32 texels (the fast path on lavapipe;
// needs n % 4 == 0 and 16-byte aligned operands; offsets then count vec4s). Otherwise scalar
// storage buffers. Bindings may alias (y == a): each invocation reads its elements first.
#include "common.glsl"
layout(local_size_x = 256) in;
#if defined(VEC4)
#define T vec4
layout(binding = 0) buffer Y { vec4 y[]; };
layout(binding = 1) uniform usamplerBuffer A;
layout(binding = 2) uniform usamplerBuffer B;
#define LOAD_A(i) uintBitsToFloat(texelFetch(A, int(i)))
#define LOAD_B(i) uintBitsToFloat(texelFetch(B, int(i)))
#else
#define T float
layout(binding = 0) buffer Y { float y[]; };
layout(binding = 1) readonly buffer Ab { float a[]; };
layout(binding = 2) readonly buffer Bb { float b[]; };
#define LOAD_A(i) a[i]
#define LOAD_B(i) b[i]
#endif
// n counts T elements
layout(push_constant) uniform P { uint n, y_off, a_off, b_off; } p;

float silu1(float x) { return jf_silu(x); }
float gelu1(float x) { return jf_gelu(x); }
#if defined(VEC4)
vec4 silu4(vec4 x) { return vec4(jf_silu(x.x), jf_silu(x.y), jf_silu(x.z), jf_silu(x.w)); }
vec4 gelu4(vec4 x) { return vec4(jf_gelu(x.x), jf_gelu(x.y), jf_gelu(x.z), jf_gelu(x.w)); }
#define SILU silu4
#define GELU gelu4
#else
#define SILU silu1
#define GELU gelu1
#endif

void main() {
  uint i = jf_group_linear() * 256u + gl_LocalInvocationID.x;
  if (i >= p.n) return;
  T va = LOAD_A(p.a_off + i);
#if defined(OP_GELU)
  y[p.y_off + i] = GELU(va);
#elif defined(OP_SILU)
  y[p.y_off + i] = SILU(va);
#elif defined(OP_ADD)
  y[p.y_off + i] = va + LOAD_B(p.b_off + i);
#elif defined(OP_SILU_MUL)
  y[p.y_off + i] = SILU(va) * LOAD_B(p.b_off + i);
#endif
}
