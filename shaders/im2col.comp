// Patch extraction for a stride = kernel convolution (ViT patch embedding): image x [C, H, W] fp32
// -> y [gh * gw, C * p * p], patch n = row * gw + col, column index c * p * p + ky * p + kx, the
// order of a PyTorch Conv2d weight [out, C, p, p] viewed as [out, C * p * p]. The convolution
// then is one matmul against that weight. Pixels right of / below the last whole patch are
// dropped, as Conv2d does.
#version 450

layout(local_size_x = 256) in;

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

layout(push_constant) uniform P {
  uint channels, height, width, psize;
  uint gh, gw;
  uint total;  // gh * gw * channels * patch * patch
} p;

void main()
{
  uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (idx >= p.total)
    return;
  uint pp = p.psize * p.psize;
  uint cols = p.channels * pp;
  uint n = idx / cols, k = idx % cols;
  uint c = k / pp, r = k % pp;
  uint ky = r / p.psize, kx = r % p.psize;
  uint py = n / p.gw, px = n % p.gw;
  uint yy = py * p.psize + ky, xx = px * p.psize + kx;
  y[idx] = x[(c * p.height + yy) * p.width + xx];
}
