/* 8-bit weights (Q8_0 style) for GPUs with little memory: a Linear weight [N, K] with K % 32 == 0
 * is stored as blocks of 32 consecutive k of one row, each an fp32 scale d = max|w| / 127 and 32
 * int8 q = round(w / d); w ~ d * q. Made once on the host at load time from the bf16 weight.
 *
 * Layout of one quantized weight (one buffer, or one 16-byte aligned region of one):
 *   [0, N*K)                     int8 quants, row-major: row n at byte n*K. Rows are whole
 *                                RGBA32UI texels (16 quants each), so shaders read them from a
 *                                texel buffer (fast on lavapipe, PLATFORM.md section 2).
 *   [scales_offset, +N*SK*4)     fp32 scales, row-major with a row stride of SK floats,
 *                                SK = K/32 rounded up to 4: every row starts on a texel, so a
 *                                binding window can start at any row.
 * Scales are fp32 rather than fp16: bf16 weights can be far smaller than fp16's normal range
 * (a block with max|w| < 7.8e-3 would get a subnormal fp16 scale and lose precision), and the
 * cost is 0.5 bit per weight (9.0 instead of 8.5 bits). */
#pragma once

#include "vkrt.h"

G_BEGIN_DECLS

#define VKRT_Q8_BLOCK 32u

/* Floats per row of the scale array (K/32 rounded up to a multiple of 4). */
uint32_t vkrt_quant_q8_0_scale_stride(uint32_t k);
/* Byte offset of the scale array (N*K rounded up to 256). */
uint64_t vkrt_quant_q8_0_scales_offset(uint32_t n, uint32_t k);
/* Total bytes of a quantized [n, k] weight. */
uint64_t vkrt_quant_q8_0_bytes(uint32_t n, uint32_t k);

/* Quantizes rows [0, n) of a bf16 weight w[n, k] (uint16 bit patterns) into out, which holds
 * vkrt_quant_q8_0_bytes(n, k) bytes (padding is zeroed). Round to nearest (ties away from zero),
 * d = max|w| / 127 per block; an all-zero block gets d = 0. Non-finite weights are an error.
 * k must be a positive multiple of 32. */
gboolean vkrt_quant_q8_0(const uint16_t *w, uint32_t n, uint32_t k, void *out, GError **error);

/* y[M,N] = x[M,K] . dequant(wq)[N,K]^T (+ bias[N], bf16) (+ y if VKRT_MM_ACCUMULATE), with the
 * VKRT_MM_* flags of vkrt_op_matmul (ops.h) and the same rules: fp32 activations, fp32
 * accumulation, weights dequantized in registers. wq is laid out as vkrt_quant_q8_0 makes it
 * and must start 16-byte aligned; K % 32 == 0. A GEMV kernel serves M <= 4 (decode), tiled GEMM
 * kernels the rest; weights larger than one binding are bound in windows of rows. The tiled
 * kernel follows vkrt_ops_force_gemm / JANUSFLOW_GEMM as vkrt_op_matmul does; the fp16-emulating
 * and cooperative-matrix choices, which have no Q8 form, take the shared-memory kernel. */
void vkrt_op_matmul_q8(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor wq, VkrtTensor bias,
                       uint32_t M, uint32_t N, uint32_t K, uint32_t flags);

G_END_DECLS
