#include "gen_weights.h"
#include "ops_gen.h"
#include <string.h>

static VkrtBuffer *own(GPtrArray *owner, VkrtBuffer *b)
{
  if (b)
    g_ptr_array_add(owner, b);
  return b;
}

/* Shaders read bf16 tensors as 32-bit words, so a tensor with an odd element count needs the
 * buffer to extend to the next word: every buffer here is rounded up to 4 bytes. */
static VkrtBuffer *upload_bf16(VkrtContext *ctx, const StFile *f, const StTensor *t, const uint16_t *data,
                               GError **error)
{
  uint64_t n = t->n_elements, alloc = (n * 2 + 3) / 4 * 4;
  uint16_t *tmp = g_try_malloc0(alloc ? alloc : 4);
  if (!tmp) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of host memory converting %s",
                safetensors_path(f), t->name);
    return NULL;
  }
  if (data)
    memcpy(tmp, data, n * 2);
  else
    safetensors_to_bf16(t, tmp);
  VkrtBuffer *buf = vkrt_buffer_new(ctx, alloc ? alloc : 4, error);
  if (buf && alloc && !vkrt_buffer_write(buf, 0, tmp, alloc, error)) {
    vkrt_buffer_free(buf);
    buf = NULL;
  }
  g_free(tmp);
  return buf;
}

static gboolean dim_ok(int64_t want, int64_t got)
{
  return want < 0 || want == got;
}

static char *shape_str(const StTensor *t)
{
  GString *s = g_string_new("[");
  for (int i = 0; i < t->ndim; i++)
    g_string_append_printf(s, "%s%" G_GINT64_FORMAT, i ? ", " : "", t->shape[i]);
  g_string_append_c(s, ']');
  return g_string_free(s, FALSE);
}

static gboolean bad_shape(const StFile *f, const StTensor *t, const char *expected, GError **error)
{
  char *s = shape_str(t);
  g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "%s: tensor %s has shape %s, expected %s",
              safetensors_path(f), t->name, s, expected);
  g_free(s);
  return FALSE;
}

VkrtBuffer *genw_linear(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t out, int64_t in, int64_t *out_n, int64_t *in_n, GError **error)
{
  const StTensor *t = safetensors_require(f, name, -1, NULL, error);
  if (!t)
    return NULL;
  gboolean ok = (t->ndim == 2 || (t->ndim == 4 && t->shape[2] == 1 && t->shape[3] == 1)) &&
                dim_ok(out, t->shape[0]) && dim_ok(in, t->shape[1]);
  if (!ok) {
    char *e = g_strdup_printf("[%" G_GINT64_FORMAT ", %" G_GINT64_FORMAT "] (or with 1x1 kernel dims)", out, in);
    bad_shape(f, t, e, error);
    g_free(e);
    return NULL;
  }
  if (out_n) *out_n = t->shape[0];
  if (in_n) *in_n = t->shape[1];
  return own(owner, upload_bf16(ctx, f, t, NULL, error));
}

VkrtBuffer *genw_vector(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t n, int64_t *n_out, gboolean optional, GError **error)
{
  const StTensor *t = safetensors_find(f, name);
  if (!t) {
    if (optional)
      return NULL;
    safetensors_require(f, name, -1, NULL, error);
    return NULL;
  }
  gboolean ok = t->ndim >= 1 && dim_ok(n, t->shape[t->ndim - 1]);
  for (int i = 0; ok && i < t->ndim - 1; i++)
    ok = t->shape[i] == 1;
  if (!ok) {
    char *e = g_strdup_printf("[%" G_GINT64_FORMAT "]", n);
    bad_shape(f, t, e, error);
    g_free(e);
    return NULL;
  }
  if (n_out) *n_out = t->shape[t->ndim - 1];
  return own(owner, upload_bf16(ctx, f, t, NULL, error));
}

/* Converts t to bf16 on the host, reorders it with `reorder`, uploads. */
static VkrtBuffer *upload_reordered(VkrtContext *ctx, const StFile *f, const StTensor *t,
                                    void (*reorder)(uint16_t *dst, const uint16_t *src, const int64_t *shape),
                                    GError **error)
{
  uint64_t bytes = t->n_elements * 2;
  uint16_t *src = g_try_malloc(bytes ? bytes : 2), *dst = g_try_malloc(bytes ? bytes : 2);
  VkrtBuffer *buf = NULL;
  if (!src || !dst) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of host memory converting %s",
                safetensors_path(f), t->name);
    goto out;
  }
  safetensors_to_bf16(t, src);
  reorder(dst, src, t->shape);
  buf = upload_bf16(ctx, f, t, dst, error);
out:
  g_free(src);
  g_free(dst);
  return buf;
}

static void reorder_conv(uint16_t *dst, const uint16_t *src, const int64_t *s)
{
  vkrt_conv_weight_reorder(dst, src, (uint32_t)s[0], (uint32_t)s[1], (uint32_t)s[2], (uint32_t)s[3]);
}

static void reorder_dw(uint16_t *dst, const uint16_t *src, const int64_t *s)
{
  vkrt_dwconv_weight_reorder(dst, src, (uint32_t)s[0], (uint32_t)s[2]);
}

VkrtBuffer *genw_conv(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                      const int64_t shape[4], int64_t shape_out[4], GError **error)
{
  const StTensor *t = safetensors_require(f, name, 4, shape, error);
  if (!t)
    return NULL;
  if (t->shape[0] > UINT32_MAX || t->shape[1] > UINT32_MAX || t->n_elements == 0) {
    bad_shape(f, t, "a non-empty convolution weight", error);
    return NULL;
  }
  if (shape_out)
    for (int i = 0; i < 4; i++)
      shape_out[i] = t->shape[i];
  return own(owner, upload_reordered(ctx, f, t, reorder_conv, error));
}

VkrtBuffer *genw_dwconv(VkrtContext *ctx, const StFile *f, GPtrArray *owner, const char *name,
                        int64_t c, int64_t *k_out, GError **error)
{
  const int64_t shape[4] = { c, 1, -1, -1 };
  const StTensor *t = safetensors_require(f, name, 4, shape, error);
  if (!t)
    return NULL;
  if (t->shape[2] != t->shape[3] || t->shape[2] < 1 || t->shape[2] % 2 == 0) {
    bad_shape(f, t, "[C, 1, k, k] with an odd k", error);
    return NULL;
  }
  *k_out = t->shape[2];
  return own(owner, upload_reordered(ctx, f, t, reorder_dw, error));
}

VkrtBuffer *genw_scratch(VkrtContext *ctx, GPtrArray *owner, uint64_t bytes, GError **error)
{
  return own(owner, vkrt_buffer_new(ctx, bytes ? bytes : 4, error));
}
