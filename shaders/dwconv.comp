#version 450
// Depthwise convolution, NHWC, stride 1, zero padding: one thread per output element.
// w bf16 [k, k, c] (tap-major, so neighbouring threads read neighbouring weights).
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(std430, binding = 2) readonly buffer W { uint w[]; };
layout(std430, binding = 3) readonly buffer B { uint bias[]; };

layout(push_constant) uniform P {
  uint e0, count;            // first global output element of this dispatch, elements
  uint h, wd, c, k, pad;     // input = output spatial size is h x wd (stride 1, same padding)
  uint ho, wo;
  int y_add, x_add, w_add, b_add;
  uint has_bias;
} p;

float bf(uint v, uint i) { return uintBitsToFloat((i & 1u) != 0u ? (v & 0xffff0000u) : (v << 16)); }

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
