/* Argument checks and binding windows shared by the generation op wrappers (op_conv.c,
 * op_dwconv.c, op_norm_gen.c, op_eltwise_gen.c). Private to vk/.
 *
 * Window convention (every gen shader): the shader computes the *global* index g of an element
 * counted from the start of the tensor, and reads binding element g + add. A window binds an
 * aligned byte range of the buffer that covers the elements a dispatch touches; add (possibly
 * negative) = (tensor offset - window offset) / element size. */
#pragma once

#include "vkrt.h"
#include <stdarg.h>

typedef struct {
  VkrtTensor bind;
  int32_t add;
} GenWin;

/* Records "op: message" as the sequence's error. Always returns FALSE. */
static inline gboolean G_GNUC_PRINTF(3, 4) gen_fail(VkrtSeq *seq, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED, "%s: %s", op, msg));
  g_free(msg);
  return FALSE;
}

/* t must exist, hold `bytes` bytes and start on an element boundary. */
static inline gboolean gen_check(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                 uint64_t bytes, uint32_t esize)
{
  if (!t.buf)
    return gen_fail(seq, op, "%s is missing", what);
  if (t.size < bytes || t.offset + bytes > vkrt_buffer_size(t.buf))
    return gen_fail(seq, op, "%s holds %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " needed",
                    what, t.size, bytes);
  if (t.offset % esize)
    return gen_fail(seq, op, "%s offset %" G_GUINT64_FORMAT " is not a multiple of %u", what,
                    t.offset, esize);
  return TRUE;
}

/* Largest byte count a window is guaranteed to cover wherever it starts. */
static inline uint64_t gen_capacity(const VkrtContext *ctx)
{
  uint64_t max = vkrt_max_binding(ctx, false), a = vkrt_binding_align(ctx, false);
  /* room for the alignment slack at the start and the rounding to a word at the end */
  return max > a + 4 ? max - a - 4 : 0;
}

static inline uint64_t gen_window_capacity(VkrtSeq *seq)
{
  return gen_capacity(vkrt_seq_context(seq));
}

/* The window covering bytes [b0, b1) of t (relative to t's offset). FALSE if it exceeds one
 * binding. */
static inline gboolean gen_window(VkrtSeq *seq, VkrtTensor t, uint64_t b0, uint64_t b1,
                                  uint32_t esize, GenWin *w)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t a = vkrt_binding_align(ctx, false);
  uint64_t start = (t.offset + b0) / a * a;
  uint64_t end = (t.offset + b1 + 3) / 4 * 4;
  uint64_t bufsize = vkrt_buffer_size(t.buf);
  if (end > bufsize)
    end = bufsize;
  if (end <= start)
    end = start + 4 <= bufsize ? start + 4 : bufsize;
  if (end - start > vkrt_max_binding(ctx, false))
    return FALSE;
  w->bind = (VkrtTensor){ t.buf, start, end - start };
  w->add = (int32_t)(((int64_t)t.offset - (int64_t)start) / esize);
  return TRUE;
}

/* Checks t and binds its first `bytes` bytes whole; fails (recording why) if they exceed one
 * binding. */
static inline gboolean gen_window_whole(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                        uint64_t bytes, uint32_t esize, GenWin *w)
{
  if (!gen_check(seq, op, what, t, bytes, esize))
    return FALSE;
  if (!gen_window(seq, t, 0, bytes, esize, w))
    return gen_fail(seq, op, "%s needs a %" G_GUINT64_FORMAT "-byte binding, the device allows %"
                    G_GUINT64_FORMAT, what, bytes, vkrt_max_binding(vkrt_seq_context(seq), false));
  return TRUE;
}

/* Images per dispatch when each dispatch binds whole images of `n` operands with the given
 * per-image byte sizes (0 = operand bound whole elsewhere). 0 if one image does not fit. */
static inline uint32_t gen_images_per_window(VkrtSeq *seq, uint32_t batch, const uint64_t *img_bytes,
                                             int n)
{
  uint64_t cap = gen_window_capacity(seq);
  uint64_t k = batch;
  for (int i = 0; i < n; i++) {
    if (!img_bytes[i])
      continue;
    uint64_t fit = cap / img_bytes[i];
    if (fit < k)
      k = fit;
  }
  return (uint32_t)k;
}

/* Workgroup count of a grid-stride loop over `n` items with 256 threads per group. */
static inline uint32_t gen_stride_groups(uint64_t n)
{
  uint64_t g = (n + 255) / 256;
  if (g == 0)
    g = 1;
  return g > 65535 ? 65535 : (uint32_t)g;
}

/* Global element indices are 32-bit in the shaders (with a signed window offset). */
#define GEN_MAX_ELEMS ((uint64_t)INT32_MAX)
