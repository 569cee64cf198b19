/* weights: moving checkpoint tensors onto the device. Everything becomes bf16 on the device
 * (F32/F16 files are rounded to nearest even once, at load), whatever dtype the file uses. */
#pragma once
#include "safetensors.h"
#include "vkrt.h"

G_BEGIN_DECLS

/* Finds `name` in f, checks its shape (ndim/shape as in safetensors_require; NULL shape = any),
 * uploads it as bf16 into a new buffer. The error names the file and the tensor. */
VkrtBuffer *weights_upload(VkrtContext *ctx, const StFile *f, const char *name, int ndim,
                           const int64_t *shape, GError **error);
/* Finds the Linear weight `name` [n, k] (k a multiple of 32), checks its shape, quantizes it
 * on the host to Q8_0 (vk/quant.h: blocks of 32 k, fp32 scale + 32 int8) and uploads that into
 * a new buffer for vkrt_op_matmul_q8. */
VkrtBuffer *weights_upload_q8_0(VkrtContext *ctx, const StFile *f, const char *name, int64_t n, int64_t k,
                                GError **error);
/* Same, with a printf-style name. */
VkrtBuffer *weights_uploadf(VkrtContext *ctx, const StFile *f, GError **error, int ndim,
                            const int64_t *shape, const char *fmt, ...) G_GNUC_PRINTF(6, 7);
/* Uploads host data (n floats) as fp32 into a new buffer. */
VkrtBuffer *weights_upload_f32(VkrtContext *ctx, const float *data, uint64_t n, GError **error);

G_END_DECLS
