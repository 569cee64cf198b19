/* Plain-C references of the ops in vk/ops.h, one ref_<op>() per op, written for clarity, not
 * speed. Same argument conventions as the ops: fp32 activations, bf16 weights as uint16 bit
 * patterns, sizes in elements. Accumulation in double where the op accumulates (the reference
 * should be at least as accurate as the op it checks). */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bf16.h"

float ref_gelu(float x);              /* exact: 0.5 x (1 + erf(x / sqrt 2)) */
float ref_silu(float x);

/* flags as VKRT_MM_* in vk/ops.h; bias may be NULL */
void ref_matmul(float *y, const float *x, const uint16_t *w, const uint16_t *bias,
                uint32_t M, uint32_t N, uint32_t K, uint32_t flags);
void ref_embed(float *y, const uint16_t *table, const int32_t *ids, uint32_t n, uint32_t dim, uint32_t vocab);
void ref_rmsnorm(float *y, const float *x, const uint16_t *w, uint32_t rows, uint32_t dim, float eps);
void ref_rope(float *x, const int32_t *pos, uint32_t rows, uint32_t row_stride, uint32_t n_heads,
              uint32_t head_dim, float theta);
/* mask may be NULL; layouts as vkrt_op_attention (n_kv_heads K/V heads, dividing n_heads) */
void ref_attention(float *out, const float *q, const float *k, const float *v, const int32_t *mask,
                   uint32_t n_batch, uint32_t n_q, uint32_t n_heads, uint32_t head_dim, uint32_t q_start,
                   uint32_t n_kv, uint32_t kv_capacity, bool causal, float scale, uint32_t n_kv_heads);
/* fp16 (IEEE binary16) bit patterns, for the fp16 K/V cache: ref_f16_from_f32 rounds to nearest
 * even through the compiler's _Float16 (not the shader's integer method), so overflow gives
 * +-inf and NaN a NaN; ref_f16_to_f32 is exact. */
uint16_t ref_f16_from_f32(float f);
float ref_f16_to_f32(uint16_t h);
void ref_silu_mul(float *y, const float *gate, const float *up, uint32_t n);
void ref_add(float *y, const float *a, const float *b, uint32_t n);
void ref_argmax(uint32_t *out, const float *x, uint32_t rows, uint32_t n);
void ref_topk(float *out_val, uint32_t *out_idx, const float *x, uint32_t n, uint32_t k);

/* Error measures used by the op tests (as llama.cpp test-backend-ops): normalized mean squared
 * error sum((a-b)^2) / sum(b^2), relative L2 error sqrt of that, and the max abs difference. */
double ref_nmse(const float *got, const float *want, size_t n);
double ref_max_abs(const float *got, const float *want, size_t n);
