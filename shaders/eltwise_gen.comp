#version 450
// Element-wise generation ops, one variant per -D flag (see vk/ops_gen.h for the math):
//   OP_SILU, OP_AFFINE (y = a x + b), OP_FILM, OP_UPSAMPLE (nearest 2x, NHWC),
//   OP_PIXSHUF (PixelShuffle from NHWC to NCHW or NHWC), OP_CONCAT (channels, b broadcast by image modulo),
//   OP_CFG (CFG + Euler step + x0 estimate + RGBA8 preview), OP_TRANSPOSE.
// Grid-stride loops over `count` outputs starting at global index e0; window offsets *_add.
#extension GL_GOOGLE_include_directive : require
#include "common.glsl"

layout(local_size_x = 256) in;

#define LOOP for (uint i = gl_GlobalInvocationID.x; i < p.count; i += gl_NumWorkGroups.x * 256u)

#if defined(OP_SILU) || defined(OP_AFFINE)
layout(std430, binding = 0) buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint e0, count; float a, b; int y_add, x_add; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;
    float v = x[int(e) + p.x_add];
#ifdef OP_SILU
    v = v / (1.0 + exp(-v));
#else
    v = fma(v, p.a, p.b);
#endif
    y[int(e) + p.y_add] = v;
  }
}
#endif

#ifdef OP_FILM
layout(std430, binding = 0) buffer X { float x[]; };
layout(std430, binding = 1) readonly buffer M { float mod_[]; };
layout(push_constant) uniform P { uint e0, count, hw, c, mod_batch; int x_add, m_add; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;
    uint ch = e % p.c, b = e / (p.hw * p.c);
    int mo = int((b % p.mod_batch) * 2u * p.c + ch) + p.m_add;
    float v = x[int(e) + p.x_add];
    x[int(e) + p.x_add] = fma(v, 1.0 + mod_[mo], mod_[mo + int(p.c)]);
  }
}
#endif

#ifdef OP_UPSAMPLE
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint e0, count, h, w, c; int y_add, x_add; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;
    uint ch = e % p.c, pix = e / p.c;
    uint ox = pix % (2u * p.w), rest = pix / (2u * p.w);
    uint oy = rest % (2u * p.h), b = rest / (2u * p.h);
    y[int(e) + p.y_add] = x[int(((b * p.h + oy / 2u) * p.w + ox / 2u) * p.c + ch) + p.x_add];
  }
}
#endif

#ifdef OP_PIXSHUF
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint e0, count, h, w, c, r; int y_add, x_add; uint nhwc; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;   // output index over NCHW [B, c, h r, w r] or NHWC [B, h r, w r, c]
    uint wr = p.w * p.r, hr = p.h * p.r;
    uint X_, Y_, ch, b, rest;
    if (p.nhwc != 0u) {
      ch = e % p.c; rest = e / p.c;
      X_ = rest % wr; rest /= wr;
      Y_ = rest % hr; b = rest / hr;
    } else {
      X_ = e % wr; rest = e / wr;
      Y_ = rest % hr; rest /= hr;
      ch = rest % p.c; b = rest / p.c;
    }
    uint cin = (ch * p.r + Y_ % p.r) * p.r + X_ % p.r;
    uint src = ((b * p.h + Y_ / p.r) * p.w + X_ / p.r) * (p.c * p.r * p.r) + cin;
    y[int(e) + p.y_add] = x[int(src) + p.x_add];
  }
}
#endif

#ifdef OP_CONCAT
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer A { float a[]; };
layout(std430, binding = 2) readonly buffer Bb { float bsrc[]; };
layout(push_constant) uniform P { uint e0, count, hw, ca, cb, b_batch; int y_add, a_add, b_add; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;
    uint ct = p.ca + p.cb;
    uint ch = e % ct, pix = e / ct;
    float v;
    if (ch < p.ca) {
      v = a[int(pix * p.ca + ch) + p.a_add];
    } else {
      uint img = pix / p.hw, px = pix % p.hw;
      v = bsrc[int(((img % p.b_batch) * p.hw + px) * p.cb + ch - p.ca) + p.b_add];
    }
    y[int(e) + p.y_add] = v;
  }
}
#endif

#ifdef OP_CFG
// One invocation per latent pixel: its `ch` channels (stride hw) are stepped together, so the
// preview of x0 and the copy of z before the step come out of the same pass instead of two more
// dispatches over the latent. Without a preview ch = 1 and hw = per; the preview reads the first
// (up to) 4 channels, as the host-side gen_preview_with_cfg does.
layout(std430, binding = 0) buffer Z { float z[]; };
layout(std430, binding = 1) readonly buffer V { float v[]; };
layout(std430, binding = 2) writeonly buffer X0 { float x0[]; };
layout(std430, binding = 3) writeonly buffer VO { float vo[]; };
// cfg, dt, t live in memory, not push constants: a recorded step is replayed with new values
layout(std430, binding = 4) readonly buffer PR { float prm[]; };
layout(std430, binding = 5) writeonly buffer ZP { float zp[]; };
layout(std430, binding = 6) writeonly buffer O { uint rgba[]; };
layout(push_constant) uniform P {
  uint e0, count, total;   // count = n * hw pixels; total = n * per: v_uncond starts there
  uint flags;              // 1: write x0, 2: write v_out, 4: write z_prev, 8: write the preview
  int z_add, v_add, x0_add, vo_add, p_add, zp_add, o_add;
  uint hw, ch, per, rgb_batch;
  float m[12];             // preview factors m[ch * 3 + rgb]; bias after them
  float bias[3];
} p;
void main() {
  float cfg = prm[p.p_add], dt = prm[p.p_add + 1], t = prm[p.p_add + 2];
  LOOP {
    uint q = p.e0 + i;     // pixel over [n, hw]
    uint b = q / p.hw, px = q % p.hw;
    float l[4] = float[4](0.0, 0.0, 0.0, 0.0);
    for (uint c = 0u; c < p.ch; c++) {
      uint e = b * p.per + c * p.hw + px;
      float vc = v[int(e) + p.v_add], vu = v[int(e + p.total) + p.v_add];
      float vel = cfg * vc - (cfg - 1.0) * vu;
      float zk = z[int(e) + p.z_add];
      float xe = zk + (1.0 - t) * vel;
      if (c < 4u) l[c] = xe;
      if ((p.flags & 1u) != 0u)
        x0[int(e) + p.x0_add] = xe;
      if ((p.flags & 2u) != 0u)
        vo[int(e) + p.vo_add] = vel;
      if ((p.flags & 4u) != 0u)
        zp[int(e) + p.zp_add] = zk;
      z[int(e) + p.z_add] = zk + dt * vel;
    }
    if ((p.flags & 8u) != 0u && b < p.rgb_batch) {
      uint packed = 0xff000000u;
      for (uint c = 0u; c < 3u; c++) {
        float s = p.bias[c];
        for (uint k = 0u; k < 4u; k++)
          s = fma(l[k], p.m[k * 3u + c], s);   // channels past ch stay 0
        float u = clamp((s + 1.0) * 0.5, 0.0, 1.0);
        packed |= uint(floor(u * 255.0 + 0.5)) << (8u * c);
      }
      rgba[int(q) + p.o_add] = packed;
    }
  }
}
#endif

#ifdef OP_TRANSPOSE
layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };
layout(push_constant) uniform P { uint e0, count, rows, cols; int y_add, x_add; } p;
void main() {
  LOOP {
    uint e = p.e0 + i;   // output index over [cols, rows]
    uint r = e % p.rows, c = e / p.rows;
    y[int(e) + p.y_add] = x[int(r * p.cols + c) + p.x_add];
  }
}
#endif
