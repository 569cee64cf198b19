/* Plain-C references for the vision ops (vk/ops_vision.h), used by the op tests. Straightforward
 * loops with double-precision statistics: the point is being obviously right, not fast. */
#pragma once
#include <stdint.h>
#include <string.h>

#include "bf16.h"

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
