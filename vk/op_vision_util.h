/* Argument checks and binding windows shared by the vision op wrappers (op_layernorm.c,
 * op_patch.c, op_add_bf16.c). Private to vk/.
 *
 * Binding convention (as in the core ops): a tensor is bound from its offset rounded down to the
 * device's storage alignment, and the shader adds `off` (the skipped bytes in units of the
 * shader's element: 4 for fp32, 2 for bf16) to its indices. So callers may pass any view whose
 * offset is a multiple of the element size, e.g. one row of a bigger matrix. */
#pragma once

#include "vkrt.h"
#include <stdarg.h>

typedef struct {
  VkrtTensor bind;
  uint32_t off;
} OpvBind;

/* Records "op: message" as the sequence's error. Always returns FALSE. */
static inline gboolean G_GNUC_PRINTF(4, 5) opv_fail(VkrtSeq *seq, int code, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, code, "%s: %s", op, msg));
  g_free(msg);
  return FALSE;
}

/* Binds `bytes` bytes of t from its offset. t must exist and hold them; the binding is widened
 * to whole 32-bit words (shaders read bf16 pairs as words; buffers are allocated in whole
 * words and more, so the word holding an odd last element exists). */
static inline gboolean opv_bind(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                uint64_t bytes, uint32_t unit, OpvBind *b)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  if (!t.buf)
    return opv_fail(seq, VKRT_ERROR_FAILED, op, "%s is missing", what);
  if (t.size < bytes || t.offset + bytes > vkrt_buffer_size(t.buf))
    return opv_fail(seq, VKRT_ERROR_FAILED, op, "%s holds %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " needed",
                    what, t.size, bytes);
  uint64_t skip = 0;
  VkrtTensor a = vkrt_tensor_aligned(ctx, vkrt_tensor_sub(t, 0, bytes), false, &skip);
  if (skip % unit)
    return opv_fail(seq, VKRT_ERROR_FAILED, op, "%s offset %" G_GUINT64_FORMAT " is not a multiple of %u bytes",
                    what, t.offset, unit);
  a.size = (a.size + 3) / 4 * 4;
  if (a.size > vkrt_max_binding(ctx, false))
    return opv_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "%s needs a %" G_GUINT64_FORMAT "-byte binding, the device allows %"
                    G_GUINT64_FORMAT, what, a.size, vkrt_max_binding(ctx, false));
  if (skip / unit > UINT32_MAX)
    return opv_fail(seq, VKRT_ERROR_FAILED, op, "%s offset too large", what);
  b->bind = a;
  b->off = (uint32_t)(skip / unit);
  return TRUE;
}

/* Bytes a window may span so that it still fits one binding whatever its start offset. */
static inline uint64_t opv_window_bytes(VkrtSeq *seq)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t max = vkrt_max_binding(ctx, false), a = vkrt_binding_align(ctx, false);
  return max > a + 4 ? max - a - 4 : 0;
}

/* The sub-view [from, from + bytes) of t, clamped to t (opv_bind then reports what is short). */
static inline VkrtTensor opv_slice(VkrtTensor t, uint64_t from)
{
  return vkrt_tensor_sub(t, from, t.size > from ? t.size - from : 0);
}
