/* Plain-C references for the vision ops (vk/ops_vision.h), used by the op tests. Straightforward
 * loops with double-precision statistics: the point is being obviously right, not fast. */
#pragma once
#include <stdint.h>
#include <string.h>

/* bf16 bit pattern -> float (exact) and float -> bf16 (round to nearest even; NaN kept quiet). */
static inline float refv_bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}
static inline uint16_t refv_f32_to_bf16(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

void ref_layernorm(float *y, const float *x, const uint16_t *w, const uint16_t *b, uint32_t rows,
                   uint32_t dim, float eps);
void ref_im2col(float *y, const float *x, uint32_t channels, uint32_t height, uint32_t width,
                uint32_t patch);
/* y[n, out] = conv(x) with w bf16 [out, channels, patch, patch], bias bf16 [out] (or NULL),
 * written as the direct convolution sum rather than through im2col. */
void ref_patch_embed(float *y, const float *x, const uint16_t *w, const uint16_t *bias,
                     uint32_t channels, uint32_t height, uint32_t width, uint32_t patch, uint32_t out);
/* y[i] = (a ? a[i] : 0) + float(b[i]). */
void ref_add_bf16(float *y, const float *a, const uint16_t *b, uint32_t n);
