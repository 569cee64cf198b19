/* Vision ops: what the SigLIP understanding encoder needs beyond the core op library (ops.h).
 * Same conventions as ops.h: fp32 activations, bf16 weights (uint16 bit patterns), sizes in
 * elements, every op records into a VkrtSeq and never submits; invalid arguments are recorded
 * as the sequence's error (returned by vkrt_seq_submit). */
#pragma once

#include "vkrt.h"

G_BEGIN_DECLS

/* y[r,:] = (x[r,:] - mean) / sqrt(var + eps) * w + b over rows of dim values (biased variance,
 * as torch.nn.LayerNorm); w and b bf16 [dim]; statistics in fp32. y may be x. Rows are split
 * into windows when x exceeds the device's storage-buffer range. */
void vkrt_op_layernorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor b,
                       uint32_t rows, uint32_t dim, float eps);

/* Patches of a stride = kernel convolution: x fp32 [channels, height, width] ->
 * y fp32 [gh * gw, channels * patch * patch] with gh = height / patch, gw = width / patch;
 * patch n = row * gw + col; columns in PyTorch Conv2d weight order (c, ky, kx). Pixels beyond
 * the last whole patch are ignored, as Conv2d does. */
void vkrt_op_im2col(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t channels, uint32_t height,
                    uint32_t width, uint32_t patch);

/* The ViT patch embedding, Conv2d(channels -> out, kernel = stride = patch, bias):
 * y fp32 [gh * gw, out] (token-major: the conv output flattened and transposed) from
 * x fp32 [channels, height, width], w bf16 [out, channels, patch, patch], bias bf16 [out] or none.
 * cols is scratch of at least gh * gw * channels * patch * patch floats. */
void vkrt_op_patch_embed(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor cols, VkrtTensor w,
                         VkrtTensor bias, uint32_t channels, uint32_t height, uint32_t width,
                         uint32_t patch, uint32_t out);

/* y[i] = a[i] + float(b[i]) for n elements, b bf16 (e.g. a position-embedding table added to a
 * [tokens, width] activation). a may be vkrt_tensor_none(): then y[i] = float(b[i]) (a bf16 ->
 * fp32 conversion). y may alias a. */
void vkrt_op_add_bf16(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n);

G_END_DECLS
