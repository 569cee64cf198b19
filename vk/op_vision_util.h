/* Argument checking and dispatch-shape helpers shared by the vision op wrappers (op_layernorm.c,
 * op_patch.c, op_add_bf16.c). Private to vk/. */
#pragma once

#include "vkrt.h"
#include <stdarg.h>

/* Records "op: message" as the sequence's error. Always returns FALSE. */
static inline gboolean G_GNUC_PRINTF(3, 4) opv_fail(VkrtSeq *seq, const char *op, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED, "%s: %s", op, msg));
  g_free(msg);
  return FALSE;
}

/* A tensor that is bound as `bytes` bytes from its offset must exist, hold them, start on a
 * storage-offset boundary and fit in one binding. */
static inline gboolean opv_check(VkrtSeq *seq, const char *op, const char *what, VkrtTensor t,
                                 uint64_t bytes)
{
  const VkrtDeviceInfo *info = vkrt_context_info(vkrt_seq_context(seq));
  if (!t.buf)
    return opv_fail(seq, op, "%s is missing", what);
  if (t.size < bytes || t.offset + bytes > vkrt_buffer_size(t.buf))
    return opv_fail(seq, op, "%s holds %" G_GUINT64_FORMAT " bytes, %" G_GUINT64_FORMAT " needed",
                    what, t.size, bytes);
  if (info->min_storage_align && t.offset % info->min_storage_align)
    return opv_fail(seq, op, "%s offset %" G_GUINT64_FORMAT " is not a multiple of %" G_GUINT64_FORMAT,
                    what, t.offset, info->min_storage_align);
  if (bytes > info->max_storage_range)
    return opv_fail(seq, op, "%s needs a %" G_GUINT64_FORMAT "-byte binding, the device allows %" G_GUINT64_FORMAT,
                    what, bytes, info->max_storage_range);
  return TRUE;
}

/* The binding of n bf16 values: shaders read whole 32-bit words, so an odd count is rounded up
 * to the next word when the buffer has room for it. */
static inline VkrtTensor opv_bf16_view(VkrtTensor t, uint64_t n)
{
  uint64_t bytes = n * 2;
  if ((bytes & 3) && t.offset + bytes + 2 <= vkrt_buffer_size(t.buf))
    bytes += 2;
  return vkrt_tensor_sub(t, 0, bytes);
}

/* Workgroup counts for `groups` workgroups, folded into 2-D when above the per-dimension limit;
 * shaders rebuild the linear index as wg.y * num_wg.x + wg.x and bound-check it. */
static inline void opv_groups(uint64_t groups, uint32_t out[3])
{
  const uint64_t lim = 65535;
  if (groups == 0)
    groups = 1;
  out[0] = (uint32_t)(groups < lim ? groups : lim);
  out[1] = (uint32_t)((groups + out[0] - 1) / out[0]);
  out[2] = 1;
}
