// Patch extraction for a stride = kernel convolution (ViT patch embedding): image x [C, H, W] fp32
// -> y [gh * gw, C * p * p], patch n = row * gw + col, column index c * p * p + ky * p + kx, the
// order of a PyTorch Conv2d weight [out, C, p, p] viewed as [out, C * p * p]. The convolution
// then is one matmul against that weight. Pixels right of / below the last whole patch are
// dropped, as Conv2d does.
// One dispatch covers n_ch channels starting at channel c0 and n_rows patch rows: the whole image
// normally, a band of one channel when the tensors exceed one binding (the wrapper's windows).
#version 450

layout(local_size_x = 256) in;

layout(std430, binding = 0) writeonly buffer Y { float y[]; };
layout(std430, binding = 1) readonly buffer X { float x[]; };

layout(push_constant) uniform P {
  uint off_y, off_x;    // element offsets of the bound views
  uint n_ch, c0, cols;  // channels in this dispatch, first channel, columns of y (C * p * p)
  uint ch_stride;       // floats between channel planes of the bound x
  uint width, psize;
  uint n_rows, gw;      // patch rows in this dispatch, patches per row
  uint total;           // n_rows * gw * n_ch * psize * psize
} p;

void main()
{
  uint idx = (gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x) * 256u + gl_LocalInvocationID.x;
  if (idx >= p.total)
    return;
  uint pp = p.psize * p.psize;
  uint k = idx % (p.n_ch * pp), n = idx / (p.n_ch * pp);
  uint c = k / pp, r = k % pp;
  uint ky = r / p.psize, kx = r % p.psize;
  uint py = n / p.gw, px = n % p.gw;
  uint src = p.off_x + c * p.ch_stride + (py * p.psize + ky) * p.width + px * p.psize + kx;
  y[p.off_y + n * p.cols + (p.c0 + c) * pp + r] = x[src];
}
