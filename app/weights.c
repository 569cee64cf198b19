#include "weights.h"
#include "quant.h"
#include <string.h>
#include <stdarg.h>

VkrtBuffer *weights_upload(VkrtContext *ctx, const StFile *f, const char *name, int ndim,
                           const int64_t *shape, GError **error)
{
  const StTensor *t = safetensors_require(f, name, shape ? ndim : -1, shape, error);
  if (!t)
    return NULL;
  uint64_t bytes = t->n_elements * 2;
  /* shaders read bf16 pairs as 32-bit words: round up to a whole word (zero pad), which also
   * gives an empty tensor a buffer so callers need no special case */
  uint64_t padded = (bytes + 3) & ~(uint64_t)3;
  VkrtBuffer *buf = vkrt_buffer_new(ctx, padded ? padded : 4, error);
  if (!buf)
    return NULL;
  if (padded != bytes && !vkrt_buffer_fill(buf, padded - 4, 4, 0, error)) {
    vkrt_buffer_free(buf);
    return NULL;
  }
  gboolean ok;
  if (t->dtype == ST_DTYPE_BF16) {
    ok = vkrt_buffer_write(buf, 0, t->data, bytes, error);
  } else {
    uint16_t *tmp = g_try_malloc(bytes ? bytes : 1);
    if (!tmp) {
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of host memory converting %s",
                  safetensors_path(f), name);
      vkrt_buffer_free(buf);
      return NULL;
    }
    safetensors_to_bf16(t, tmp);
    ok = vkrt_buffer_write(buf, 0, tmp, bytes, error);
    g_free(tmp);
  }
  if (!ok) {
    vkrt_buffer_free(buf);
    return NULL;
  }
  return buf;
}

VkrtBuffer *weights_upload_q8_0(VkrtContext *ctx, const StFile *f, const char *name, int64_t n, int64_t k,
                                GError **error)
{
  int64_t shape[2] = { n, k };
  const StTensor *t = safetensors_require(f, name, 2, shape, error);
  if (!t)
    return NULL;
  if (n <= 0 || k <= 0 || k % VKRT_Q8_BLOCK != 0 || n > UINT32_MAX || k > UINT32_MAX) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                "%s: %s [%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] cannot be stored as q8_0 (needs %u | in)",
                safetensors_path(f), name, n, k, VKRT_Q8_BLOCK);
    return NULL;
  }
  uint64_t bytes = vkrt_quant_q8_0_bytes((uint32_t)n, (uint32_t)k);
  const uint16_t *src = t->dtype == ST_DTYPE_BF16 ? t->data : NULL;
  uint16_t *tmp = NULL;
  uint8_t *packed = g_try_malloc(bytes);
  if (!src)
    src = tmp = g_try_malloc(t->n_elements * 2);
  if (!packed || !src) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of host memory quantizing %s", safetensors_path(f), name);
    g_free(packed);
    g_free(tmp);
    return NULL;
  }
  if (tmp)
    safetensors_to_bf16(t, tmp);
  VkrtBuffer *buf = NULL;
  GError *e = NULL;
  if (vkrt_quant_q8_0(src, (uint32_t)n, (uint32_t)k, packed, &e) && (buf = vkrt_buffer_new(ctx, bytes, &e)) &&
      !vkrt_buffer_write(buf, 0, packed, bytes, &e))
    g_clear_pointer(&buf, vkrt_buffer_free);
  if (e) {
    g_propagate_prefixed_error(error, e, "%s: %s: ", safetensors_path(f), name);
  }
  g_free(packed);
  g_free(tmp);
  return buf;
}

VkrtBuffer *weights_uploadf(VkrtContext *ctx, const StFile *f, GError **error, int ndim,
                            const int64_t *shape, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *name = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  VkrtBuffer *b = weights_upload(ctx, f, name, ndim, shape, error);
  g_free(name);
  return b;
}

VkrtBuffer *weights_upload_f32(VkrtContext *ctx, const float *data, uint64_t n, GError **error)
{
  VkrtBuffer *buf = vkrt_buffer_new(ctx, n ? n * 4 : 4, error);
  if (!buf)
    return NULL;
  if (n && !vkrt_buffer_write(buf, 0, data, n * 4, error)) {
    vkrt_buffer_free(buf);
    return NULL;
  }
  return buf;
}
