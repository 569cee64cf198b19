/* The SigLIP understanding encoder + aligner (app/siglip.c) on the tiny fixture: the features
 * after the final LayerNorm and the aligned embeddings against the PyTorch reference's dumps, a
 * select_layer-shortened tower against a plain-C forward pass, and load errors. */
#include "siglip.h"
#include "config.h"
#include "npy.h"
#include "safetensors.h"
#include "test_util.h"
#include <math.h>
#include <string.h>

static VkrtContext *ctx;
static char *model_dir, *case_dir;

typedef struct {
  JfModelConfig *cfg;
  StFile *st;
} Fixture;

static void fixture_open(Fixture *fx)
{
  GError *err = NULL;
  fx->cfg = config_load_model(model_dir, &err);
  g_assert_no_error(err);
  char *path = g_build_filename(model_dir, "model.safetensors", NULL);
  fx->st = safetensors_open(path, &err);
  g_assert_no_error(err);
  g_free(path);
}

static void fixture_close(Fixture *fx)
{
  safetensors_close(fx->st);
  config_free_model(fx->cfg);
}

/* Runs the encoder on pixels; returns g_malloc'd embeds [T, hidden] and features [T, width]. */
static void encode(JfSiglip *s, const float *pixels, float **embeds, float **feats)
{
  GError *err = NULL;
  uint32_t T = siglip_n_tokens(s), H = siglip_hidden(s), W = siglip_width(s);
  VkrtBuffer *out = vkrt_buffer_new(ctx, (uint64_t)T * H * 4, &err);
  g_assert_no_error(err);
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  vkrt_seq_begin(seq);
  g_assert_true(siglip_encode(s, seq, pixels, vkrt_tensor(out), &err));
  g_assert_no_error(err);
  g_assert_true(vkrt_seq_submit(seq, &err));
  g_assert_no_error(err);
  *embeds = g_new(float, (gsize)T * H);
  *feats = g_new(float, (gsize)T * W);
  g_assert_true(vkrt_buffer_read(out, 0, *embeds, (uint64_t)T * H * 4, &err));
  VkrtTensor ft = siglip_features(s);
  g_assert_true(vkrt_buffer_read(ft.buf, ft.offset, *feats, (uint64_t)T * W * 4, &err));
  g_assert_no_error(err);
  vkrt_seq_free(seq);
  vkrt_buffer_free(out);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

static void test_golden(void)
{
  Fixture fx;
  fixture_open(&fx);
  GError *err = NULL;
  JfSiglip *s = siglip_new(ctx, fx.st, fx.cfg, &err);
  g_assert_no_error(err);
  g_assert_nonnull(s);

  char *dbg = g_build_filename(case_dir, "debug", NULL);
  NpyArray *pix = test_npy_read_f32(dbg, "pixel_values.npy");
  NpyArray *want_feats = test_npy_read_f32(dbg, "vision_features.npy");
  NpyArray *want_embeds = test_npy_read_f32(case_dir, "image_embeds.npy");
  uint32_t S = siglip_image_size(s), T = siglip_n_tokens(s);
  g_assert_cmpuint(pix->n_elements, ==, 3ull * S * S);
  g_assert_cmpuint(want_feats->n_elements, ==, (uint64_t)T * siglip_width(s));
  g_assert_cmpuint(want_embeds->n_elements, ==, (uint64_t)T * siglip_hidden(s));

  float *embeds, *feats;
  encode(s, pix->data, &embeds, &feats);
  double mf, me;
  double ef = test_rel_l2(feats, want_feats->data, want_feats->n_elements, &mf);
  double ee = test_rel_l2(embeds, want_embeds->data, want_embeds->n_elements, &me);
  g_test_message("vision_features rel-L2 %.3g (max abs %.3g); image_embeds rel-L2 %.3g (max abs %.3g)",
                 ef, mf, ee, me);
  g_assert_cmpfloat(ef, <, 2e-2);
  g_assert_cmpfloat(ee, <, 2e-2);

  /* a second image through the same (reused) scratch buffers gives the same result */
  float *embeds2, *feats2;
  encode(s, pix->data, &embeds2, &feats2);
  g_assert_cmpmem(embeds, want_embeds->n_elements * 4, embeds2, want_embeds->n_elements * 4);

  /* beg_of_und_embed, host copy and the recorded fp32 row, against the checkpoint */
  uint32_t H = siglip_hidden(s);
  const StTensor *bt = safetensors_find(fx.st, "beg_of_und_embed");
  g_assert_nonnull(bt);
  float *want_beg = g_new(float, H), *got_beg = g_new(float, H);
  safetensors_to_f32(bt, want_beg);
  g_assert_cmpmem(siglip_beg_embed_host(s), H * 4, want_beg, H * 4);
  VkrtBuffer *row = vkrt_buffer_new(ctx, (uint64_t)H * 4, &err);
  VkrtSeq *seq = vkrt_seq_new(ctx, &err);
  g_assert_no_error(err);
  vkrt_seq_begin(seq);
  siglip_record_beg_embed(s, seq, vkrt_tensor(row));
  g_assert_true(vkrt_seq_submit(seq, &err));
  g_assert_no_error(err);
  g_assert_true(vkrt_buffer_read(row, 0, got_beg, (uint64_t)H * 4, &err));
  g_assert_cmpmem(got_beg, H * 4, want_beg, H * 4);
  vkrt_seq_free(seq);
  vkrt_buffer_free(row);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);

  g_free(want_beg); g_free(got_beg);
  g_free(embeds); g_free(feats); g_free(embeds2); g_free(feats2);
  npy_array_free(pix); npy_array_free(want_feats); npy_array_free(want_embeds);
  g_free(dbg);
  siglip_free(s);
  fixture_close(&fx);
}

/* --- plain-C forward pass (double accumulation) for the select_layer check ------------------ */

static float *tensor_f32(const StFile *f, const char *fmt, int i)
{
  char *name = g_strdup_printf(fmt, i);
  const StTensor *t = safetensors_find(f, name);
  g_assert_nonnull(t);
  float *v = g_new(float, t->n_elements);
  safetensors_to_f32(t, v);
  g_free(name);
  return v;
}

/* y[T, N] = x[T, K] w[N, K]^T + b */
static void c_linear(float *y, const float *x, const float *w, const float *b, int T, int N, int K)
{
  for (int t = 0; t < T; t++)
    for (int n = 0; n < N; n++) {
      double s = b[n];
      for (int k = 0; k < K; k++)
        s += (double)x[t * K + k] * w[n * K + k];
      y[t * N + n] = (float)s;
    }
}

static void c_layernorm(float *y, const float *x, const float *w, const float *b, int T, int W, float eps)
{
  for (int t = 0; t < T; t++) {
    double m = 0, v = 0;
    for (int i = 0; i < W; i++)
      m += x[t * W + i];
    m /= W;
    for (int i = 0; i < W; i++)
      v += (x[t * W + i] - m) * (x[t * W + i] - m);
    v /= W;
    for (int i = 0; i < W; i++)
      y[t * W + i] = (float)((x[t * W + i] - m) / sqrt(v + eps) * w[i] + b[i]);
  }
}

#define TW "vision_und_enc_model.vision_tower."

static void c_siglip(const StFile *f, const JfModelConfig *cfg, const float *pix, float *out)
{
  const JfSiglipConfig *c = &cfg->siglip;
  int S = c->image_size, P = c->patch, G = S / P, T = G * G, W = c->width, M = c->mlp_dim;
  int NH = c->heads, D = W / NH, H = cfg->llm.hidden;
  float *x = g_new0(float, T * W), *h = g_new(float, T * W), *qkv = g_new(float, T * 3 * W);
  float *a = g_new(float, T * W), *m = g_new(float, T * M), *tmp = g_new(float, T * W);
  float *pw = tensor_f32(f, TW "patch_embed.proj.weight", 0), *pb = tensor_f32(f, TW "patch_embed.proj.bias", 0);
  float *pos = tensor_f32(f, TW "pos_embed", 0);
  for (int t = 0; t < T; t++)
    for (int o = 0; o < W; o++) {
      double s = pb[o];
      for (int ch = 0; ch < 3; ch++)
        for (int ky = 0; ky < P; ky++)
          for (int kx = 0; kx < P; kx++)
            s += (double)pw[((o * 3 + ch) * P + ky) * P + kx] *
                 pix[(ch * S + (t / G) * P + ky) * S + (t % G) * P + kx];
      x[t * W + o] = (float)s + pos[t * W + o];
    }
  for (int l = 0; l < c->layers; l++) {
    float *n1w = tensor_f32(f, TW "blocks.%d.norm1.weight", l), *n1b = tensor_f32(f, TW "blocks.%d.norm1.bias", l);
    float *qw = tensor_f32(f, TW "blocks.%d.attn.qkv.weight", l), *qb = tensor_f32(f, TW "blocks.%d.attn.qkv.bias", l);
    float *ow = tensor_f32(f, TW "blocks.%d.attn.proj.weight", l), *ob = tensor_f32(f, TW "blocks.%d.attn.proj.bias", l);
    float *n2w = tensor_f32(f, TW "blocks.%d.norm2.weight", l), *n2b = tensor_f32(f, TW "blocks.%d.norm2.bias", l);
    float *f1w = tensor_f32(f, TW "blocks.%d.mlp.fc1.weight", l), *f1b = tensor_f32(f, TW "blocks.%d.mlp.fc1.bias", l);
    float *f2w = tensor_f32(f, TW "blocks.%d.mlp.fc2.weight", l), *f2b = tensor_f32(f, TW "blocks.%d.mlp.fc2.bias", l);
    c_layernorm(h, x, n1w, n1b, T, W, c->ln_eps);
    c_linear(qkv, h, qw, qb, T, 3 * W, W);
    for (int hd = 0; hd < NH; hd++)
      for (int i = 0; i < T; i++) {
        double sc[T], mx = -INFINITY, sum = 0;
        for (int j = 0; j < T; j++) {
          double d = 0;
          for (int e = 0; e < D; e++)
            d += (double)qkv[i * 3 * W + hd * D + e] * qkv[j * 3 * W + W + hd * D + e];
          sc[j] = d / sqrt(D);
          mx = MAX(mx, sc[j]);
        }
        for (int j = 0; j < T; j++)
          sum += (sc[j] = exp(sc[j] - mx));
        for (int e = 0; e < D; e++) {
          double o = 0;
          for (int j = 0; j < T; j++)
            o += sc[j] * qkv[j * 3 * W + 2 * W + hd * D + e];
          a[i * W + hd * D + e] = (float)(o / sum);
        }
      }
    c_linear(tmp, a, ow, ob, T, W, W);
    for (int i = 0; i < T * W; i++)
      x[i] += tmp[i];
    c_layernorm(h, x, n2w, n2b, T, W, c->ln_eps);
    c_linear(m, h, f1w, f1b, T, M, W);
    for (int i = 0; i < T * M; i++)
      m[i] = (float)(0.5 * m[i] * (1.0 + erf(m[i] / sqrt(2.0))));
    c_linear(tmp, m, f2w, f2b, T, W, M);
    for (int i = 0; i < T * W; i++)
      x[i] += tmp[i];
    g_free(n1w); g_free(n1b); g_free(qw); g_free(qb); g_free(ow); g_free(ob);
    g_free(n2w); g_free(n2b); g_free(f1w); g_free(f1b); g_free(f2w); g_free(f2b);
  }
  float *nw = tensor_f32(f, TW "norm.weight", 0), *nb = tensor_f32(f, TW "norm.bias", 0);
  float *aw = tensor_f32(f, "vision_und_enc_aligner.weight", 0), *ab = tensor_f32(f, "vision_und_enc_aligner.bias", 0);
  c_layernorm(h, x, nw, nb, T, W, c->ln_eps);
  c_linear(out, h, aw, ab, T, H, W);
  g_free(nw); g_free(nb); g_free(aw); g_free(ab); g_free(pw); g_free(pb); g_free(pos);
  g_free(x); g_free(h); g_free(qkv); g_free(a); g_free(m); g_free(tmp);
}

/* select_layer = -2 keeps one block of the tiny tower's two; the C forward pass with the same
 * config is the reference. Also checks the pixel_mean/std path. */
static void check_c_forward(int layers, gboolean pixel_norm)
{
  Fixture fx;
  fixture_open(&fx);
  fx.cfg->siglip.layers = layers;
  if (pixel_norm) {
    fx.cfg->siglip.pixel_norm = true;
    for (int i = 0; i < 3; i++) {
      fx.cfg->siglip.pixel_mean[i] = 0.25f + 0.125f * i;
      fx.cfg->siglip.pixel_std[i] = 0.5f + 0.25f * i;
    }
  }
  GError *err = NULL;
  JfSiglip *s = siglip_new(ctx, fx.st, fx.cfg, &err);
  g_assert_no_error(err);
  char *dbg = g_build_filename(case_dir, "debug", NULL);
  NpyArray *pix = test_npy_read_f32(dbg, "pixel_values.npy");
  float *normed = g_new(float, pix->n_elements);
  const float *src = pix->data;
  uint64_t plane = pix->n_elements / 3;
  for (uint64_t i = 0; i < pix->n_elements; i++) {
    int ch = (int)(i / plane);
    normed[i] = pixel_norm ? (src[i] - fx.cfg->siglip.pixel_mean[ch]) / fx.cfg->siglip.pixel_std[ch] : src[i];
  }
  uint32_t T = siglip_n_tokens(s), H = siglip_hidden(s);
  float *want = g_new(float, (gsize)T * H);
  c_siglip(fx.st, fx.cfg, normed, want);
  float *embeds, *feats;
  encode(s, pix->data, &embeds, &feats);
  double mx, e = test_rel_l2(embeds, want, (gsize)T * H, &mx);
  g_test_message("layers=%d pixel_norm=%d vs C forward: rel-L2 %.3g (max abs %.3g)", layers, pixel_norm, e, mx);
  g_assert_cmpfloat(e, <, 1e-4);
  g_free(embeds); g_free(feats); g_free(want); g_free(normed); g_free(dbg);
  npy_array_free(pix);
  siglip_free(s);
  fixture_close(&fx);
}

static void test_select_layer(void) { check_c_forward(1, FALSE); }
static void test_pixel_norm(void) { check_c_forward(2, TRUE); }

static void test_bad_config(void)
{
  Fixture fx;
  fixture_open(&fx);
  GError *err = NULL;
  uint64_t before = vkrt_context_allocated(ctx);

  fx.cfg->siglip.width += 16;  /* every tower tensor now disagrees with the file */
  g_assert_null(siglip_new(ctx, fx.st, fx.cfg, &err));
  g_assert_nonnull(err);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, "vision_und_enc_model.vision_tower.patch_embed.proj.weight"));
  g_clear_error(&err);
  fx.cfg->siglip.width -= 16;

  fx.cfg->siglip.mlp_dim += 1;  /* caught at block 0's fc1 */
  g_assert_null(siglip_new(ctx, fx.st, fx.cfg, &err));
  g_assert_nonnull(err);
  g_assert_nonnull(strstr(err->message, "blocks.0.mlp.fc1.weight"));
  g_clear_error(&err);
  fx.cfg->siglip.mlp_dim -= 1;

  fx.cfg->siglip.layers = 5;  /* more blocks than the file has */
  g_assert_null(siglip_new(ctx, fx.st, fx.cfg, &err));
  g_assert_nonnull(err);
  g_assert_nonnull(strstr(err->message, "blocks.2."));
  g_clear_error(&err);
  fx.cfg->siglip.layers = 2;

  fx.cfg->siglip.heads = 3;  /* 32 is not a multiple of 3 */
  g_assert_null(siglip_new(ctx, fx.st, fx.cfg, &err));
  g_assert_error(err, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH);
  g_clear_error(&err);

  /* nothing leaked on the failure paths */
  g_assert_cmpuint(vkrt_context_allocated(ctx), ==, before);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  fixture_close(&fx);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  const char *data = g_getenv("JF_TEST_DATA");
  if (!data) {
    g_printerr("JF_TEST_DATA is not set\n");
    return 1;
  }
  model_dir = g_build_filename(data, "tiny", "janusflow", NULL);
  case_dir = g_build_filename(data, "tiny", "expected", "chat_image", NULL);
  ctx = test_context_new(false);
  if (!ctx)
    return 1;
  g_test_add_func("/siglip/golden", test_golden);
  g_test_add_func("/siglip/select_layer", test_select_layer);
  g_test_add_func("/siglip/pixel_norm", test_pixel_norm);
  g_test_add_func("/siglip/bad_config", test_bad_config);
  int rc = g_test_run();
  vkrt_context_free(ctx);
  g_free(model_dir);
  g_free(case_dir);
  return rc;
}
