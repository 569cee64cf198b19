/* Argument checks and binding windows shared by the LLM op wrappers (op_matmul.c, op_embed.c,
 * op_rmsnorm.c, op_rope.c, op_attention.c, op_eltwise.c, op_argmax.c). Private to vk/.
 *
 * Binding convention: a tensor is bound from its offset rounded down to the device's binding
 * alignment; the shader adds `off` (the skipped bytes, in the shader's element unit) to every
 * index. */
#pragma once

#include "vkrt.h"
#include <stdarg.h>

typedef struct {
  VkrtTensor bind;
  uint32_t off;    /* in units of the shader's element (4 bytes: fp32/int/bf16 pair; 16: texel) */
} OpBind;

/* Records "op: message" as the sequence's error (code `code`). Always returns FALSE. */
static inline gboolean G_GNUC_PRINTF(4, 5) op_fail(VkrtSeq *seq, int code, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, code, "%s: %s", op, msg));
  g_free(msg);
  return FALSE;
}

/* t must exist and hold `bytes` bytes inside its buffer. */
static inline gboolean op_check(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t, uint64_t bytes)
{
  if (!t.buf)
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s is missing", what);
  if (t.size < bytes || t.offset + bytes > vkrt_buffer_size(t.buf))
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s holds %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " needed",
                   what, t.size, bytes);
  return TRUE;
}

/* Binds t (already cut to the bytes the dispatch reads) with offset unit `unit` bytes. The
 * binding may extend up to 3 bytes past t to end on a whole word. */
static inline gboolean op_bind(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t, bool texel,
                               uint32_t unit, OpBind *b)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t skip = 0;
  VkrtTensor a = vkrt_tensor_aligned(ctx, t, texel, &skip);
  if (skip % unit)
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s offset %" G_GUINT64_FORMAT " is not a multiple of %u bytes",
                   what, t.offset, unit);
  /* whole words: bf16 arrays of odd length read the word holding their last element (buffers
   * are allocated in 256-byte steps, so the word exists) */
  a.size = (a.size + 3) / 4 * 4;
  if (a.size > vkrt_max_binding(ctx, texel))
    return op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "%s needs a %" G_GUINT64_FORMAT "-byte binding, the device allows %"
                   G_GUINT64_FORMAT, what, a.size, vkrt_max_binding(ctx, texel));
  if (skip / unit > UINT32_MAX)
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s offset too large", what);
  b->bind = a;
  b->off = (uint32_t)(skip / unit);
  return TRUE;
}

/* Bytes a window may span so that any start offset still fits one binding. */
static inline uint64_t op_window_bytes(VkrtSeq *seq, bool texel)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t max = vkrt_max_binding(ctx, texel), a = vkrt_binding_align(ctx, texel);
  return max > a + 4 ? max - a - 4 : 0;
}
