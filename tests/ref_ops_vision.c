#include "ref_ops_vision.h"
#include <math.h>

void ref_layernorm(float *y, const float *x, const uint16_t *w, const uint16_t *b, uint32_t rows,
                   uint32_t dim, float eps)
{
  for (uint32_t r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * dim;
    double mean = 0, var = 0;
    for (uint32_t i = 0; i < dim; i++)
      mean += xr[i];
    mean /= dim;
    for (uint32_t i = 0; i < dim; i++)
      var += (xr[i] - mean) * (xr[i] - mean);
    var /= dim;
    double rstd = 1.0 / sqrt(var + eps);
    for (uint32_t i = 0; i < dim; i++)
      y[(size_t)r * dim + i] =
          (float)((xr[i] - mean) * rstd * bf16_to_f32(w[i]) + bf16_to_f32(b[i]));
  }
}

void ref_im2col(float *y, const float *x, uint32_t channels, uint32_t height, uint32_t width,
                uint32_t patch)
{
  uint32_t gh = height / patch, gw = width / patch;
  size_t o = 0;
  for (uint32_t py = 0; py < gh; py++)
    for (uint32_t px = 0; px < gw; px++)
      for (uint32_t c = 0; c < channels; c++)
        for (uint32_t ky = 0; ky < patch; ky++)
          for (uint32_t kx = 0; kx < patch; kx++)
            y[o++] = x[((size_t)c * height + py * patch + ky) * width + px * patch + kx];
}

void ref_patch_embed(float *y, const float *x, const uint16_t *w, const uint16_t *bias,
                     uint32_t channels, uint32_t height, uint32_t width, uint32_t patch, uint32_t out)
{
  uint32_t gh = height / patch, gw = width / patch;
  for (uint32_t py = 0; py < gh; py++)
    for (uint32_t px = 0; px < gw; px++)
      for (uint32_t o = 0; o < out; o++) {
        double s = bias ? bf16_to_f32(bias[o]) : 0.0;
        for (uint32_t c = 0; c < channels; c++)
          for (uint32_t ky = 0; ky < patch; ky++)
            for (uint32_t kx = 0; kx < patch; kx++)
              s += (double)bf16_to_f32(w[(((size_t)o * channels + c) * patch + ky) * patch + kx]) *
                   x[((size_t)c * height + py * patch + ky) * width + px * patch + kx];
        y[((size_t)py * gw + px) * out + o] = (float)s;
      }
}

void ref_add_bf16(float *y, const float *a, const uint16_t *b, uint32_t n)
{
  for (uint32_t i = 0; i < n; i++)
    y[i] = (a ? a[i] : 0.0f) + bf16_to_f32(b[i]);
}
