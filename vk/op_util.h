/* Argument checks and binding windows shared by every op wrapper (vk/op_*.c). Private to vk/.
 *
 * Two binding conventions, one per shader family:
 *
 * - OpBind (LLM and vision ops): a tensor is bound from its offset rounded down to the device's
 *   binding alignment; the shader adds `off` (the skipped bytes, in the shader's element unit) to
 *   every index. So callers may pass any view whose offset is a multiple of the element size,
 *   e.g. one row of a bigger matrix.
 *
 * - OpWin (generation ops, op_conv.c, op_dwconv.c, op_norm_gen.c, op_eltwise_gen.c): the shader
 *   computes the *global* index g of an element counted from the start of the tensor, and reads
 *   binding element g + add. A window binds an aligned byte range of the buffer that covers the
 *   elements a dispatch touches; add (possibly negative) = (tensor offset - window offset) /
 *   element size. */
#pragma once

#include "vkrt.h"
#include <stdarg.h>
#include <string.h>

typedef struct {
  VkrtTensor bind;
  uint32_t off;    /* in units of the shader's element (4 bytes: fp32/int/bf16 pair; 2: bf16; 16: texel) */
} OpBind;

typedef struct {
  VkrtTensor bind;
  int32_t add;
} OpWin;

/* Global element indices are 32-bit in the OpWin shaders (with a signed window offset). */
#define OP_WIN_MAX_ELEMS ((uint64_t)INT32_MAX)

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

/* As op_check, and t must start on an element boundary (OpWin shaders index whole elements from
 * the tensor's start). */
static inline gboolean op_check_elems(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                      uint64_t bytes, uint32_t esize)
{
  if (!op_check(seq, op, what, t, bytes))
    return FALSE;
  if (t.offset % esize)
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s offset %" G_GUINT64_FORMAT " is not a multiple of %u", what,
                   t.offset, esize);
  return TRUE;
}

/* Largest byte count a window is guaranteed to cover wherever it starts. */
static inline uint64_t op_window_bytes_ctx(const VkrtContext *ctx, bool texel)
{
  uint64_t max = vkrt_max_binding(ctx, texel), a = vkrt_binding_align(ctx, texel);
  /* room for the alignment slack at the start and the rounding to a word at the end */
  return max > a + 4 ? max - a - 4 : 0;
}

static inline uint64_t op_window_bytes(VkrtSeq *seq, bool texel)
{
  return op_window_bytes_ctx(vkrt_seq_context(seq), texel);
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

/* Checks t (op_check) and binds its first `bytes` bytes as a storage buffer (op_bind), for
 * callers that pass uncut views such as op_slice's. */
static inline gboolean op_bind_bytes(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                     uint64_t bytes, uint32_t unit, OpBind *b)
{
  if (!op_check(seq, op, what, t, bytes))
    return FALSE;
  return op_bind(seq, op, what, vkrt_tensor_sub(t, 0, bytes), false, unit, b);
}

/* The view of t from byte `from` to its end, clamped to t (op_bind_bytes then reports what is
 * short). */
static inline VkrtTensor op_slice(VkrtTensor t, uint64_t from)
{
  return vkrt_tensor_sub(t, from, t.size > from ? t.size - from : 0);
}

/* The OpWin covering bytes [b0, b1) of t (relative to t's offset). FALSE if it exceeds one
 * binding. */
static inline gboolean op_win(VkrtSeq *seq, VkrtTensor t, uint64_t b0, uint64_t b1, uint32_t esize, OpWin *w)
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

/* The texel-buffer OpWin covering bytes [b0, b1) of t; add counts 16-byte texels. FALSE unless t
 * starts on a texel and the window fits one binding. */
static inline gboolean op_win_texel(VkrtSeq *seq, VkrtTensor t, uint64_t b0, uint64_t b1, OpWin *w)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t a = vkrt_binding_align(ctx, true);
  if (t.offset % 16 || a % 16)
    return FALSE;
  uint64_t start = (t.offset + b0) / a * a, end = t.offset + b1;
  if (end <= start)
    end = start + 16;
  if (end - start > vkrt_max_binding(ctx, true))
    return FALSE;
  w->bind = (VkrtTensor){ t.buf, start, end - start };
  w->add = (int32_t)(((int64_t)t.offset - (int64_t)start) / 16);
  return TRUE;
}

/* Whether an op takes its CPU-device form (texel loads, no barriers: spec/PLATFORM.md) or its GPU
 * form: the device type decides, unless the environment variable `env` names one of the two. */
static inline bool op_cpu_form(VkrtContext *ctx, const char *env, const char *cpu_name, const char *gpu_name)
{
  const char *e = g_getenv(env);
  if (e && strcmp(e, gpu_name) == 0)
    return false;
  if (e && strcmp(e, cpu_name) == 0)
    return true;
  return vkrt_context_info(ctx)->type == VKRT_DEVICE_CPU;
}

/* Checks t (op_check_elems) and binds its first `bytes` bytes whole in an OpWin; fails (recording
 * why) if they exceed one binding. */
static inline gboolean op_win_whole(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                    uint64_t bytes, uint32_t esize, OpWin *w)
{
  if (!op_check_elems(seq, op, what, t, bytes, esize))
    return FALSE;
  if (!op_win(seq, t, 0, bytes, esize, w))
    return op_fail(seq, VKRT_ERROR_FAILED, op, "%s needs a %" G_GUINT64_FORMAT "-byte binding, the device allows %"
                   G_GUINT64_FORMAT, what, bytes, vkrt_max_binding(vkrt_seq_context(seq), false));
  return TRUE;
}

/* Images per dispatch when each dispatch binds whole images of `n` operands with the given
 * per-image byte sizes (0 = operand bound whole elsewhere). 0 if one image does not fit. */
static inline uint32_t op_images_per_window(VkrtSeq *seq, uint32_t batch, const uint64_t *img_bytes, int n)
{
  uint64_t cap = op_window_bytes(seq, false);
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
static inline uint32_t op_stride_groups(uint64_t n)
{
  uint64_t g = (n + 255) / 256;
  if (g == 0)
    g = 1;
  return g > 65535 ? 65535 : (uint32_t)g;
}
