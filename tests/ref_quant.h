/* Plain-C references for the 8-bit weights (vk/quant.h), written from the format's definition,
 * not from vk/quant.c. */
#pragma once

#include <stdint.h>

/* w ~ d * q for every block of 32 k of a bf16 weight [n, k]: d = max|w| / 127, q = round(w / d);
 * writes the dequantized weight as fp32 [n, k]. */
void ref_q8_0_roundtrip(float *out, const uint16_t *w, uint32_t n, uint32_t k);
/* Reads a packed Q8_0 weight (the layout quant.h describes) back to fp32 [n, k]. */
void ref_q8_0_unpack(float *out, const void *packed, uint32_t n, uint32_t k);
/* y[M,N] = x . w^T (+ bias) (+ y) with an fp32 weight [N, K]; flags as VKRT_MM_*; accumulates in double. */
void ref_matmul_f32w(float *y, const float *x, const float *w, const uint16_t *bias,
                     uint32_t M, uint32_t N, uint32_t K, uint32_t flags);
