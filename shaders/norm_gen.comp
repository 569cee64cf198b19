#version 450
// Generation norms over NHWC activations, one variant per -D flag:
//   GN_STATS  GroupNorm partial statistics: one workgroup per (slab of pixels, group) writes
//             (count, mean, M2) (Welford per thread, Chan merging across threads)
//   GN_FINAL  merges the partials of one (image, group) into (mean, 1/sqrt(var + eps))
//   GN_APPLY  y = (x - mean) * rstd * gamma + beta, optional SiLU
//   GRN_STATS G[b,k] = sqrt(sum over pixels of x^2) (64 channels x 4 pixel lanes per workgroup)
//   GRN_NORM  N[b,k] = G[b,k] / (mean_k G[b,:] + 1e-6), one workgroup per image
//   GRN_APPLY x = x * (1 + gamma * N) + beta
//   SOFTMAX   in place over rows: x = exp(scale (x - max)) / sum, one workgroup per row
// Global indices plus window offsets (*_add), as every gen shader.
//
// GroupNorm's CPU (lavapipe) form, channels % 4 == 0, x read as RGBA32UI texels (4 fp32 each,
// *_add in texels): llvmpipe runs SSBO loads as per-lane scalar loops, barriers as coroutine
// switches and integer division as 8 scalar divides, all three in the inner loops of the form
// above. Here no barriers, one division per invocation, and channels stay 4-wide:
//   GN4_STATS one invocation per (slab of pixels, 4 channels): Welford over the slab, partials
//             (mean, M2) per channel (the count is the slab's pixel count)
//   GN4_FINAL one invocation per (image, group): merges the partials into per-channel
//             scale = gamma * rstd and shift = beta - mean * scale
//   GN4_APPLY one invocation per (run of pixels, 4 channels): y = x * scale + shift, optional SiLU
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

#if defined(GN4_STATS) || defined(GN4_FINAL) || defined(GN4_APPLY)
layout(local_size_x = 64) in;
#else
layout(local_size_x = 256) in;
#endif

float bfv(uint v, uint i) { return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16)); }

#if defined(GN_STATS) || defined(GN_FINAL) || defined(GN4_FINAL)
// Chan et al.: merge (nb, mb, m2b) into (na, ma, m2a).
void merge(inout float na, inout float ma, inout float m2a, float nb, float mb, float m2b) {
  float n = na + nb;
  if (nb == 0.0)
    return;
  float d = mb - ma;
  float f = nb / n;
  ma = ma + d * f;
  m2a = m2a + m2b + d * d * na * f;
  na = n;
}
#endif

#if defined(GN_STATS) || defined(GN_FINAL)
shared float sn[256], smean[256], sm2[256];

void reduce_tree(uint tid, float n, float m, float m2) {
  sn[tid] = n; smean[tid] = m; sm2[tid] = m2;
  barrier();
  for (uint s = 128u; s > 0u; s >>= 1) {
    if (tid < s) {
      float a = sn[tid], am = smean[tid], am2 = sm2[tid];
      merge(a, am, am2, sn[tid + s], smean[tid + s], sm2[tid + s]);
      sn[tid] = a; smean[tid] = am; sm2[tid] = am2;
    }
    barrier();
  }
}
#endif

#ifdef GN_STATS
layout(std430, binding = 0) writeonly buffer Part { float part[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P {
  uint hw, c, cpg, groups, slab, slabs, s0, b;
  int x_add, part_add;
} p;

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint s = p.s0 + gl_WorkGroupID.x, g = gl_WorkGroupID.y;
  const uint px0 = s * p.slab;
  const uint npx = min(p.slab, p.hw - px0);
  const uint elems = npx * p.cpg;
  float n = 0.0, mean = 0.0, m2 = 0.0;
  for (uint e = tid; e < elems; e += 256u) {
    uint pix = e / p.cpg, ch = e % p.cpg;
    float v = x[int((p.b * p.hw + px0 + pix) * p.c + g * p.cpg + ch) + p.x_add];
    n += 1.0;
    float d = v - mean;
    mean += d / n;
    m2 += d * (v - mean);
  }
  reduce_tree(tid, n, mean, m2);
  if (tid == 0u) {
    int o = int(((p.b * p.slabs + s) * p.groups + g) * 3u) + p.part_add;
    part[o] = sn[0];
    part[o + 1] = smean[0];
    part[o + 2] = sm2[0];
  }
}
#endif

#ifdef GN_FINAL
layout(std430, binding = 0) writeonly buffer St { float st[]; };
layout(std430, binding = 1) readonly buffer Part { float part[]; };
layout(push_constant) uniform P {
  uint slabs, groups;
  float eps;
  int st_add, part_add;
} p;

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint g = gl_WorkGroupID.x, b = gl_WorkGroupID.y;
  float n = 0.0, mean = 0.0, m2 = 0.0;
  for (uint s = tid; s < p.slabs; s += 256u) {
    int o = int(((b * p.slabs + s) * p.groups + g) * 3u) + p.part_add;
    merge(n, mean, m2, part[o], part[o + 1], part[o + 2]);
  }
  reduce_tree(tid, n, mean, m2);
  if (tid == 0u) {
    float var = sn[0] > 0.0 ? max(sm2[0] / sn[0], 0.0) : 0.0;
    int o = int((b * p.groups + g) * 2u) + p.st_add;
    st[o] = smean[0];
    st[o + 1] = inversesqrt(var + p.eps);
  }
}
#endif

#ifdef GN_APPLY
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer St { float st[]; };
layout(std430, binding = 3) readonly buffer G { uint gamma[]; };
layout(std430, binding = 4) readonly buffer Bt { uint beta[]; };
layout(push_constant) uniform P {
  uint e0, count, hw, c, cpg, groups, silu;
  int y_add, x_add, st_add, g_add, b_add;
} p;

void main() {
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    uint e = p.e0 + i;
    uint ch = e % p.c, b = e / (p.hw * p.c);
    int so = int((b * p.groups + ch / p.cpg) * 2u) + p.st_add;
    uint gi = uint(int(ch) + p.g_add), bi = uint(int(ch) + p.b_add);
    float v = (x[int(e) + p.x_add] - st[so]) * st[so + 1];
    v = v * bfv(gamma[gi >> 1], gi) + bfv(beta[bi >> 1], bi);
    if (p.silu != 0u)
      v = v / (1.0 + exp(-v));
    y[int(e) + p.y_add] = v;
  }
}
#endif

#ifdef GRN_STATS
layout(std430, binding = 0) buffer S { float sc[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P {
  uint b0, hw, c;
  int x_add, s_add;
} p;
shared float red[256];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint lane = tid / 64u, ch = gl_WorkGroupID.x * 64u + tid % 64u;
  const uint b = p.b0 + gl_WorkGroupID.y;
  float s = 0.0;
  if (ch < p.c)
    for (uint px = lane; px < p.hw; px += 4u) {
      float v = x[int((b * p.hw + px) * p.c + ch) + p.x_add];
      s = fma(v, v, s);
    }
  red[tid] = s;
  barrier();
  if (tid < 64u && ch < p.c)
    sc[int(b * p.c + ch) + p.s_add] = sqrt(red[tid] + red[tid + 64u] + red[tid + 128u] + red[tid + 192u]);
}
#endif

#ifdef GRN_NORM
layout(std430, binding = 0) buffer S { float sc[]; };
layout(push_constant) uniform P {
  uint c, batch;
  int s_add;
} p;
shared float red[256];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const uint b = gl_WorkGroupID.x;
  float s = 0.0;
  for (uint k = tid; k < p.c; k += 256u)
    s += sc[int(b * p.c + k) + p.s_add];
  red[tid] = s;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1) {
    if (tid < h)
      red[tid] += red[tid + h];
    barrier();
  }
  float denom = red[0] / float(p.c) + 1e-6;
  for (uint k = tid; k < p.c; k += 256u)
    sc[int((p.batch + b) * p.c + k) + p.s_add] = sc[int(b * p.c + k) + p.s_add] / denom;
}
#endif

#ifdef GRN_APPLY
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer S { float sc[]; };
layout(std430, binding = 2) readonly buffer G { uint gamma[]; };
layout(std430, binding = 3) readonly buffer Bt { uint beta[]; };
layout(push_constant) uniform P {
  uint e0, count, hw, c, batch;
  int x_add, s_add, g_add, b_add;
} p;

void main() {
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    uint e = p.e0 + i;
    uint ch = e % p.c, b = e / (p.hw * p.c);
    float nf = sc[int((p.batch + b) * p.c + ch) + p.s_add];
    uint gi = uint(int(ch) + p.g_add), bi = uint(int(ch) + p.b_add);
    float v = x[int(e) + p.x_add];
    x[int(e) + p.x_add] = fma(v, fma(bfv(gamma[gi >> 1], gi), nf, 1.0), bfv(beta[bi >> 1], bi));
  }
}
#endif

#ifdef SOFTMAX
layout(std430, binding = 0) buffer X { float x[]; };
layout(push_constant) uniform P {
  uint row0, n;
  float scale;
  int x_add;
} p;
shared float red[256];

void main() {
  const uint tid = gl_LocalInvocationID.x;
  const int base = int((p.row0 + gl_WorkGroupID.x) * p.n) + p.x_add;
  float m = -3.402823e38;
  for (uint j = tid; j < p.n; j += 256u)
    m = max(m, x[base + int(j)]);
  red[tid] = m;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1) {
    if (tid < h)
      red[tid] = max(red[tid], red[tid + h]);
    barrier();
  }
  m = red[0];
  barrier();
  float s = 0.0;
  for (uint j = tid; j < p.n; j += 256u) {
    float e = exp((x[base + int(j)] - m) * p.scale);
    x[base + int(j)] = e;
    s += e;
  }
  red[tid] = s;
  barrier();
  for (uint h = 128u; h > 0u; h >>= 1) {
    if (tid < h)
      red[tid] += red[tid + h];
    barrier();
  }
  float inv = 1.0 / red[0];
  for (uint j = tid; j < p.n; j += 256u)
    x[base + int(j)] *= inv;
}
#endif

#ifdef GN4_STATS
layout(std430, binding = 0) writeonly buffer Part { vec4 part[]; };
layout(binding = 1) uniform usamplerBuffer X;
layout(push_constant) uniform P {
  uint hw, c4, slab, slabs, s0, b, count;
  int x_add, part_add;     // texels, vec4s
} p;

void main() {
  const uint gid = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 64u;
  if (gid >= p.count)
    return;
  const uint ci = gid % p.c4, s = p.s0 + gid / p.c4;
  const uint px0 = s * p.slab, npx = min(p.slab, p.hw - px0);
  const int t0 = int((p.b * p.hw + px0) * p.c4 + ci) + p.x_add;
  vec4 mean = vec4(0.0), m2 = vec4(0.0);
  for (uint i = 0u; i < npx; i++) {
    vec4 v = uintBitsToFloat(texelFetch(X, t0 + int(i * p.c4)));
    vec4 d = v - mean;
    mean += d * (1.0 / float(i + 1u));
    m2 += d * (v - mean);
  }
  const int o = int(((p.b * p.slabs + s) * p.c4 + ci) * 2u) + p.part_add;
  part[o] = mean;
  part[o + 1] = m2;
}
#endif

#ifdef GN4_FINAL
layout(std430, binding = 0) writeonly buffer St { float st[]; };
layout(std430, binding = 1) readonly buffer Part { float part[]; };
layout(std430, binding = 2) readonly buffer G { uint gamma[]; };
layout(std430, binding = 3) readonly buffer Bt { uint beta[]; };
layout(push_constant) uniform P {
  uint hw, c, slab, slabs, cpg, groups, batch;
  float eps;
  int st_add, part_add, g_add, b_add;
} p;

void main() {
  const uint gid = gl_GlobalInvocationID.x;
  const uint g = gid % p.groups, b = gid / p.groups;
  if (b >= p.batch)
    return;
  float n = 0.0, mean = 0.0, m2 = 0.0;
  for (uint s = 0u; s < p.slabs; s++) {
    const float ns = float(min(p.slab, p.hw - s * p.slab));
    for (uint k = 0u; k < p.cpg; k++) {
      const uint ch = g * p.cpg + k;
      const int o = int(((b * p.slabs + s) * (p.c >> 2u) + (ch >> 2u)) * 8u + (ch & 3u)) + p.part_add;
      merge(n, mean, m2, ns, part[o], part[o + 4]);
    }
  }
  const float rstd = inversesqrt(max(m2 / n, 0.0) + p.eps);
  for (uint k = 0u; k < p.cpg; k++) {
    const uint ch = g * p.cpg + k;
    const uint gi = uint(int(ch) + p.g_add), bi = uint(int(ch) + p.b_add);
    const float sc = rstd * bfv(gamma[gi >> 1], gi);
    st[int(b * p.c * 2u + ch) + p.st_add] = sc;
    st[int(b * p.c * 2u + p.c + ch) + p.st_add] = bfv(beta[bi >> 1], bi) - mean * sc;
  }
}
#endif

#ifdef GN4_APPLY
layout(std430, binding = 0) writeonly buffer Y { vec4 y[]; };
layout(binding = 1) uniform usamplerBuffer X;
layout(std430, binding = 2) readonly buffer St { vec4 st[]; };
layout(push_constant) uniform P {
  uint px0, npx, c4, run, b, silu, count;   // pixels of image b in this dispatch, pixels per invocation
  int y_add, x_add, st_add;                 // vec4s, texels, vec4s
} p;

void main() {
  const uint gid = gl_GlobalInvocationID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x * 64u;
  if (gid >= p.count)
    return;
  const uint ci = gid % p.c4, r0 = (gid / p.c4) * p.run;
  const uint n = min(p.run, p.npx - r0);
  const vec4 sc = st[int(p.b * p.c4 * 2u + ci) + p.st_add];
  const vec4 sh = st[int(p.b * p.c4 * 2u + p.c4 + ci) + p.st_add];
  const uint e0 = (p.px0 + r0) * p.c4 + ci;
  for (uint i = 0u; i < n; i++) {
    const uint e = e0 + i * p.c4;
    vec4 v = uintBitsToFloat(texelFetch(X, int(e) + p.x_add)) * sc + sh;
    if (p.silu != 0u)
      v = v / (1.0 + exp(-v));
    y[int(e) + p.y_add] = v;
  }
}
#endif
