/* The SDXL-VAE decoder (app/vae.h) against the tiny fixture's float32 reference: the final
 * latents of gen_cfg2 / gen_cfg5 -> image.npy, a batch of both, a non-square latent
 * (tests/data/gen), legacy attention key names with 1x1-conv shaped weights, 64 KiB
 * bindings (every activation split into windows), and the decode cut into many submits. */
#include "vae.h"
#include "npy.h"
#include "safetensors.h"
#include "test_util.h"
#include <math.h>
#include <glib/gstdio.h>

static VkrtContext *ctx;
static char *data_dir;

#define TOL 1e-3   /* float32 reference, exact weights: only rounding order differs */

static float *load(const char *rel, size_t n_expected)
{
  return test_npy_load_floats(data_dir, rel, n_expected);
}

/* Decodes n latents (files) with v and compares with the n image files. */
static void check_decode(JfVae *v, uint32_t lh, uint32_t lw, int n, const char *const *lat_files,
                         const char *const *img_files, const char *label)
{
  uint32_t H = vae_out_h(v), W = vae_out_w(v), C = vae_out_channels(v);
  uint64_t lat_n = (uint64_t)vae_latent_channels(v) * lh * lw, img_n = (uint64_t)C * H * W;
  GError *err = NULL;
  VkrtBuffer *bl = vkrt_buffer_new(ctx, n * lat_n * 4, &err), *bo = vkrt_buffer_new(ctx, n * img_n * 4, &err);
  g_assert_no_error(err);
  for (int i = 0; i < n; i++) {
    float *l = load(lat_files[i], lat_n);
    g_assert_true(vkrt_buffer_write(bl, i * lat_n * 4, l, lat_n * 4, &err));
    g_free(l);
  }
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  gboolean ok = vae_decode(v, seq, (uint32_t)n, vkrt_tensor(bl), vkrt_tensor(bo), NULL, NULL, &err);
  g_assert_no_error(err);
  g_assert_true(ok);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_seq_free(seq);
  float *got = g_new(float, n * img_n);
  g_assert_true(vkrt_buffer_read(bo, 0, got, n * img_n * 4, &err));
  for (int i = 0; i < n; i++) {
    float *want = load(img_files[i], img_n);
    double mx, e = test_rel_l2(got + i * img_n, want, img_n, &mx);
    g_test_message("%s image %d (%s): rel-L2 %.3g, max abs diff %.3g", label, i, img_files[i], e, mx);
    g_assert_cmpfloat(e, <, TOL);
    g_free(want);
  }
  /* the latent is left as it was */
  float *l0 = load(lat_files[0], lat_n), *lr = g_new(float, lat_n);
  g_assert_true(vkrt_buffer_read(bl, 0, lr, lat_n * 4, &err));
  g_assert_cmpmem(l0, lat_n * 4, lr, lat_n * 4);
  g_free(l0); g_free(lr); g_free(got);
  vkrt_buffer_free(bl);
  vkrt_buffer_free(bo);
}

static JfVae *open_vae(const char *dir, int batch, int h, int w)
{
  GError *err = NULL;
  JfVae *v = vae_new(ctx, dir, NULL, batch, h, w, &err);
  g_assert_no_error(err);
  g_assert_nonnull(v);
  return v;
}

static const char *const lat2[] = { "tiny/expected/gen_cfg2/latent.npy", "tiny/expected/gen_cfg5/latent.npy" };
static const char *const img2[] = { "tiny/expected/gen_cfg2/image.npy", "tiny/expected/gen_cfg5/image.npy" };

static char *vae_dir(void) { return g_build_filename(data_dir, "tiny", "vae", NULL); }

static void test_fixture(void)
{
  char *d = vae_dir();
  JfVae *v = open_vae(d, 2, 8, 8);
  g_assert_cmpuint(vae_out_h(v), ==, 64);
  g_assert_cmpuint(vae_out_w(v), ==, 64);
  g_assert_cmpfloat(fabs(vae_scaling_factor(v) - 0.13025f), <, 1e-7);
  check_decode(v, 8, 8, 1, lat2, img2, "gen_cfg2");
  check_decode(v, 8, 8, 1, lat2 + 1, img2 + 1, "gen_cfg5");
  check_decode(v, 8, 8, 2, lat2, img2, "batch of 2");
  vae_free(v);
  g_free(d);
}

static void test_non_square(void)
{
  char *d = vae_dir();
  JfVae *v = open_vae(d, 1, 6, 10);
  g_assert_cmpuint(vae_out_h(v), ==, 48);
  g_assert_cmpuint(vae_out_w(v), ==, 80);
  static const char *const l[] = { "gen/vae_6x10_latent.npy" }, *const i[] = { "gen/vae_6x10_image.npy" };
  check_decode(v, 6, 10, 1, l, i, "6x10 latent");
  vae_free(v);
  g_free(d);
}

static void test_small_bindings(void)
{
  VkrtContext *saved = ctx;
  ctx = test_context_new_max_binding("65536");
  char *d = vae_dir();
  JfVae *v = open_vae(d, 1, 8, 8);
  check_decode(v, 8, 8, 1, lat2, img2, "64 KiB bindings");
  vae_free(v);
  g_free(d);
  vkrt_context_free(ctx);
  ctx = saved;
}

/* --- legacy attention names ------------------------------------------------------------------ */

/* Rewrites the fixture VAE without encoder.* / quant_conv.*, with the attention projections named
 * query/key/value/proj_attn and stored as [c, c, 1, 1]. */
static void write_legacy(const char *src, const char *dst)
{
  GError *err = NULL;
  StFile *f = safetensors_open(src, &err);
  g_assert_no_error(err);
  static const char *const from[] = { ".to_q.", ".to_k.", ".to_v.", ".to_out.0." };
  static const char *const to[] = { ".query.", ".key.", ".value.", ".proj_attn." };
  GString *hdr = g_string_new("{");
  GByteArray *data = g_byte_array_new();
  gboolean first = TRUE;
  for (guint i = 0; i < safetensors_n_tensors(f); i++) {
    const StTensor *t = safetensors_tensor(f, i);
    if (g_str_has_prefix(t->name, "encoder.") || g_str_has_prefix(t->name, "quant_conv."))
      continue;
    char *name = g_strdup(t->name);
    gboolean attn_w = FALSE;
    for (int k = 0; k < 4; k++) {
      char *p = strstr(name, from[k]);
      if (p) {
        *p = 0;
        char *n2 = g_strconcat(name, to[k], p + strlen(from[k]), NULL);
        attn_w = g_str_has_suffix(n2, ".weight");
        g_free(name);
        name = n2;
        break;
      }
    }
    g_string_append_printf(hdr, "%s\"%s\":{\"dtype\":\"%s\",\"shape\":[", first ? "" : ",", name,
                           safetensors_dtype_name(t->dtype));
    for (int d = 0; d < t->ndim; d++)
      g_string_append_printf(hdr, "%s%" G_GINT64_FORMAT, d ? "," : "", t->shape[d]);
    if (attn_w)
      g_string_append(hdr, ",1,1");
    g_string_append_printf(hdr, "],\"data_offsets\":[%u,%" G_GUINT64_FORMAT "]}", data->len, data->len + t->n_bytes);
    g_byte_array_append(data, t->data, (guint)t->n_bytes);
    first = FALSE;
    g_free(name);
  }
  g_string_append_c(hdr, '}');
  while (hdr->len % 8)
    g_string_append_c(hdr, ' ');
  uint64_t n = hdr->len;
  GByteArray *out = g_byte_array_new();
  g_byte_array_append(out, (const guint8 *)&n, 8);
  g_byte_array_append(out, (const guint8 *)hdr->str, hdr->len);
  g_byte_array_append(out, data->data, data->len);
  g_assert_true(g_file_set_contents(dst, (const char *)out->data, out->len, &err));
  g_assert_no_error(err);
  g_byte_array_unref(out);
  g_byte_array_unref(data);
  g_string_free(hdr, TRUE);
  safetensors_close(f);
}

static void test_legacy_names(void)
{
  GError *err = NULL;
  char *tmp = test_tmp_dir_new("jf-vae-XXXXXX");
  char *d = vae_dir();
  char *src = g_build_filename(d, "diffusion_pytorch_model.safetensors", NULL);
  char *dst = g_build_filename(tmp, "diffusion_pytorch_model.safetensors", NULL);
  char *cfg_src = g_build_filename(d, "config.json", NULL), *cfg_dst = g_build_filename(tmp, "config.json", NULL);
  write_legacy(src, dst);
  char *txt = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(cfg_src, &txt, &len, &err));
  g_assert_true(g_file_set_contents(cfg_dst, txt, (gssize)len, &err));
  g_free(txt);
  JfVae *v = open_vae(tmp, 1, 8, 8);
  check_decode(v, 8, 8, 1, lat2, img2, "legacy attention names");
  vae_free(v);
  g_unlink(dst);
  g_unlink(cfg_dst);
  g_rmdir(tmp);
  g_free(tmp); g_free(d); g_free(src); g_free(dst); g_free(cfg_src); g_free(cfg_dst);
}

/* Decodes the gen_cfg2 latent with a given per-submit budget; returns the image (caller frees)
 * and the submits it took. */
static float *decode_with_budget(JfVae *v, uint64_t budget, GCancellable *cancel, uint64_t *submits,
                                 double *gpu_ms, GError **error)
{
  uint64_t lat_n = (uint64_t)vae_latent_channels(v) * 8 * 8;
  uint64_t img_n = (uint64_t)vae_out_channels(v) * vae_out_h(v) * vae_out_w(v);
  GError *err = NULL;
  VkrtBuffer *bl = vkrt_buffer_new(ctx, lat_n * 4, &err), *bo = vkrt_buffer_new(ctx, img_n * 4, &err);
  g_assert_no_error(err);
  float *l = load(lat2[0], lat_n);
  g_assert_true(vkrt_buffer_write(bl, 0, l, lat_n * 4, &err));
  g_free(l);
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  vae_set_submit_flops(v, budget);
  uint64_t s0 = vkrt_context_submits(ctx);
  float *img = NULL;
  if (vae_decode(v, seq, 1, vkrt_tensor(bl), vkrt_tensor(bo), cancel, gpu_ms, error)) {
    img = g_new(float, img_n);
    g_assert_true(vkrt_buffer_read(bo, 0, img, img_n * 4, &err));
  }
  *submits = vkrt_context_submits(ctx) - s0;
  vae_set_submit_flops(v, 0);
  vkrt_seq_free(seq);
  vkrt_buffer_free(bl);
  vkrt_buffer_free(bo);
  return img;
}

/* Issue 6: the decoder goes to the GPU in bounded submits (driver watchdogs), the cuts change
 * nothing in the result, cancel is honoured between submits, and the context stays usable. */
static void test_submit_parts(void)
{
  char *d = vae_dir();
  JfVae *v = open_vae(d, 1, 8, 8);
  uint64_t img_n = (uint64_t)vae_out_channels(v) * vae_out_h(v) * vae_out_w(v);
  uint64_t one = 0, many = 0, cut = 0;
  double ms_one = 0, ms_many = 0;
  GError *err = NULL;
  float *a = decode_with_budget(v, UINT64_MAX, NULL, &one, &ms_one, &err);
  g_assert_no_error(err);
  /* a budget smaller than any op: a submit before every op that does work */
  float *b = decode_with_budget(v, 1, NULL, &many, &ms_many, &err);
  g_assert_no_error(err);
  g_test_message("one submit: %" G_GUINT64_FORMAT ", budget 1 FLOP: %" G_GUINT64_FORMAT " submits; GPU ms %.2f / %.2f",
                 one, many, ms_one, ms_many);
  g_assert_cmpuint(one, ==, 1);
  g_assert_cmpuint(many, >, 10);
  g_assert_cmpmem(a, img_n * 4, b, img_n * 4);
  if (vkrt_context_info(ctx)->has_timestamps)
    g_assert_cmpfloat(ms_many, >, 0.0);
  /* the real default on the fixture: tiny, so one submit */
  float *c = decode_with_budget(v, 0, NULL, &cut, NULL, &err);
  g_assert_no_error(err);
  g_assert_cmpuint(cut, ==, 1);
  g_assert_cmpmem(a, img_n * 4, c, img_n * 4);
  /* cancelled: stops after the first submit with G_IO_ERROR_CANCELLED */
  GCancellable *cancel = g_cancellable_new();
  g_cancellable_cancel(cancel);
  uint64_t cs = 0;
  float *x = decode_with_budget(v, 1, cancel, &cs, NULL, &err);
  g_assert_null(x);
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&err);
  g_assert_cmpuint(cs, ==, 1);
  g_object_unref(cancel);
  /* and the next decode is whole again */
  float *e = decode_with_budget(v, 1, NULL, &cut, NULL, &err);
  g_assert_no_error(err);
  g_assert_cmpmem(a, img_n * 4, e, img_n * 4);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  g_free(a); g_free(b); g_free(c); g_free(e);
  vae_free(v);
  g_free(d);
}

static void test_bad_args(void)
{
  char *d = vae_dir();
  JfVae *v = open_vae(d, 1, 8, 8);
  GError *err = NULL;
  VkrtBuffer *b = vkrt_buffer_new(ctx, 1024, &err);
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_false(vae_decode(v, seq, 2, vkrt_tensor(b), vkrt_tensor(b), NULL, NULL, &err));  /* n > max_batch */
  g_assert_nonnull(err);
  g_clear_error(&err);
  g_assert_false(vae_decode(v, seq, 1, vkrt_tensor(b), vkrt_tensor(b), NULL, NULL, &err));  /* output too small */
  g_assert_nonnull(err);
  g_test_message("expected error: %s", err->message);
  g_clear_error(&err);
  vkrt_seq_free(seq);
  vkrt_buffer_free(b);
  vae_free(v);
  /* a folder without the VAE */
  g_assert_null(vae_new(ctx, data_dir, NULL, 1, 8, 8, &err));
  g_assert_nonnull(err);
  g_clear_error(&err);
  g_free(d);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  const char *td = g_getenv("JF_TEST_DATA");
  data_dir = g_strdup(td ? td : "tests/data");
  ctx = test_context_new(false);
  if (!ctx)
    return 77;
  g_test_add_func("/vae/fixture", test_fixture);
  g_test_add_func("/vae/non-square", test_non_square);
  g_test_add_func("/vae/legacy-names", test_legacy_names);
  g_test_add_func("/vae/small-bindings", test_small_bindings);
  g_test_add_func("/vae/submit-parts", test_submit_parts);
  g_test_add_func("/vae/bad-args", test_bad_args);
  int r = g_test_run();
  vkrt_context_free(ctx);
  g_free(data_dir);
  return r;
}
