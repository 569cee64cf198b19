/* gen_weights: loading helpers shared by the generation modules (uvit.c, vae.c). Every buffer
 * they return is bf16 on the device and owned by the caller's list (a GPtrArray with
 * vkrt_buffer_free as its free function), so a module frees all its weights at once. */
#pragma once
#include "safetensors.h"
#include "vkrt.h"

G_BEGIN_DECLS

/* A Linear weight [out, in]; also accepts a 1x1 convolution [out, in, 1, 1] (same data).
 * out/in of -1 match any size; the actual sizes are returned through out_n/in_n if non-NULL. */
VkrtBuffer *genw_linear(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t out, int64_t in, int64_t *out_n, int64_t *in_n, GError **error);

/* A vector [n] (n = -1: any; the size is returned through n_out). Tensors of shape
 * [1, ..., 1, n] are accepted too (GRN's [1,1,1,4C]). optional: an absent tensor gives NULL
 * without an error. */
VkrtBuffer *genw_vector(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t n, int64_t *n_out, gboolean optional, GError **error);

/* A Conv2d weight [o, i, kh, kw] uploaded in the layout vkrt_op_conv2d reads ([o, kh, kw, i]).
 * shape entries of -1 match any size; the actual shape is returned in shape_out (if non-NULL). */
VkrtBuffer *genw_conv(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                      const int64_t shape[4], int64_t shape_out[4], GError **error);

/* A depthwise weight [c, 1, k, k] uploaded as [k, k, c] (vkrt_op_dwconv2d). *k_out = k. */
VkrtBuffer *genw_dwconv(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t c, int64_t *k_out, GError **error);

/* An fp32 device buffer of n floats (scratch), added to owner. */
VkrtBuffer *genw_scratch(VkrtContext *ctx, GPtrArray *owner, uint64_t bytes, GError **error);

G_END_DECLS
