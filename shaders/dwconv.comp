#version 450
// Depthwise convolution, NHWC, stride 1, zero padding. w bf16 [k, k, c] (tap-major, so
// neighbouring threads read neighbouring weights). Two forms:
//   (default) one thread per output element, storage buffers: any c and offsets (GPUs).
//   VEC4      CPU devices (lavapipe): an invocation owns 4 channels x TX output pixels of one
//             row; x and w are read as texels (llvmpipe gathers those 8 lanes at a time, while
//             storage loads go lane by lane), neighbouring lanes are neighbouring channel
//             quads, each input texel of a row feeds up to k taps from registers, and nothing
//             is divided per tap. Needs c % 8 == 0 and 16-byte aligned x and w (x_add / w_add
//             count texels); k is a specialization constant so the tap loops unroll.
#extension GL_GOOGLE_include_directive : require
#extension GL_EXT_control_flow_attributes : require
#include "common.glsl"

#if defined(VEC4)
layout(local_size_x = 64) in;
layout(constant_id = 0) const uint KS = 7u;
#define TX 8u
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(binding = 1) uniform usamplerBuffer X;
layout(binding = 2) uniform usamplerBuffer W;
#else
layout(local_size_x = 256) in;
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { uint w[]; };
#endif
layout(std430, binding = 3) readonly buffer B { uint bias[]; };

layout(push_constant) uniform P {
  uint e0, count;            // first global output element of this dispatch, elements
  uint h, wd, c, k, pad;     // input = output spatial size is h x wd (stride 1, same padding)
  uint ho, wo;
  int y_add, x_add, w_add, b_add;
  uint has_bias;
} p;

float bf(uint v, uint i) { return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16)); }

#if defined(VEC4)
// e0 / count: first global output pixel-row block and blocks (of TX pixels x 4 channels) here
void main() {
  uint id = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (id >= p.count) return;
  uint c4n = p.c / 4u, nxb = (p.wo + TX - 1u) / TX;
  uint g = p.e0 + id;
  uint c4 = g % c4n, rest = g / c4n;
  uint xb = rest % nxb, oy = (rest / nxb) % p.ho, b = rest / (nxb * p.ho);
  uint ox0 = xb * TX;
  vec4 acc[TX];
  vec4 bv = vec4(0.0);
  if (p.has_bias != 0u) {
    uint bi = uint(int(4u * c4) + p.b_add);
    bv = vec4(bf(bias[bi >> 1], bi), bf(bias[(bi + 1u) >> 1], bi + 1u), bf(bias[(bi + 2u) >> 1], bi + 2u),
              bf(bias[(bi + 3u) >> 1], bi + 3u));
  }
  [[unroll]] for (uint t = 0u; t < TX; t++) acc[t] = bv;
  for (uint ky = 0u; ky < KS; ky++) {
    int iy = int(oy + ky) - int(p.pad);
    if (iy < 0 || iy >= int(p.h)) continue;
    int row = int((b * p.h + uint(iy)) * p.wd) * int(c4n) + int(c4) + p.x_add;
    vec4 xs[TX + KS - 1u];
    [[unroll]] for (uint j = 0u; j < TX + KS - 1u; j++) {
      int ix = int(ox0 + j) - int(p.pad);
      xs[j] = ix >= 0 && ix < int(p.wd) ? uintBitsToFloat(texelFetch(X, row + ix * int(c4n))) : vec4(0.0);
    }
    [[unroll]] for (uint kx = 0u; kx < KS; kx++) {
      // 8 bf16 channels per texel: this quad is its low or high half
      uvec4 u = texelFetch(W, int(((ky * KS + kx) * p.c) / 8u + c4 / 2u) + p.w_add);
      uvec2 h = (c4 & 1u) != 0u ? u.zw : u.xy;
      vec4 wv = vec4(uintBitsToFloat(h.x << 16), uintBitsToFloat(h.x & 0xffff0000u),
                     uintBitsToFloat(h.y << 16), uintBitsToFloat(h.y & 0xffff0000u));
      [[unroll]] for (uint t = 0u; t < TX; t++) acc[t] += xs[t + kx] * wv;
    }
  }
  uint base = ((b * p.ho + oy) * p.wo + ox0) * p.c + 4u * c4;
  [[unroll]] for (uint t = 0u; t < TX; t++) {
    if (ox0 + t >= p.wo) break;
    int o = int(base + t * p.c) + p.y_add;
    y[o] = acc[t].x; y[o + 1] = acc[t].y; y[o + 2] = acc[t].z; y[o + 3] = acc[t].w;
  }
}
#else
void main() {
  const uint stride = gl_NumWorkGroups.x * 256u;
  for (uint i = gl_GlobalInvocationID.x; i < p.count; i += stride) {
    uint g = p.e0 + i;
    uint ch = g % p.c, pix = g / p.c;
    uint ox = pix % p.wo, oy = (pix / p.wo) % p.ho, b = pix / (p.wo * p.ho);
    float s = 0.0;
    if (p.has_bias != 0u) {
      uint bi = uint(int(ch) + p.b_add);
      s = bf(bias[bi >> 1], bi);
    }
    for (uint ky = 0u; ky < p.k; ky++) {
      int iy = int(oy + ky) - int(p.pad);
      if (iy < 0 || iy >= int(p.h))
        continue;
      for (uint kx = 0u; kx < p.k; kx++) {
        int ix = int(ox + kx) - int(p.pad);
        if (ix < 0 || ix >= int(p.wd))
          continue;
        uint wi = uint(int((ky * p.k + kx) * p.c + ch) + p.w_add);
        float xv = x[int(((b * p.h + uint(iy)) * p.wd + uint(ix)) * p.c + ch) + p.x_add];
        s = fma(xv, bf(w[wi >> 1], wi), s);
      }
    }
    y[int(g) + p.y_add] = s;
  }
}
#endif
