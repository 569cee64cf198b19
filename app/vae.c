/* vae: see vae.h. Three activation buffers rotate through the decoder: a resnet reads x from one,
 * writes GN1 output into the second and conv1 output into the third, and adds conv2 (fused
 * residual) into x's buffer, or into the second one when a 1x1 shortcut changes the width. */
#include "vae.h"
#include "budget.h"
#include "config.h"
#include "gen_weights.h"
#include "ops.h"
#include "ops_gen.h"
#include <math.h>
#include <stdarg.h>

#define VAE_EPS 1e-6f

typedef struct { VkrtBuffer *w, *b; uint32_t cin, cout, k; } Conv;
typedef struct { VkrtBuffer *g, *b; uint32_t c; } Norm;
typedef struct { Norm n1, n2; Conv c1, c2, sc; bool has_sc; } Resnet;
typedef struct { Norm gn; VkrtBuffer *wq, *bq, *wk, *bk, *wv, *bv, *wo, *bo; uint32_t c; } Attn;
typedef struct { Resnet *res; uint32_t n_res; bool up; Conv upconv; } UpBlock;

struct JfVae {
  VkrtContext *ctx;
  GPtrArray *bufs;
  uint32_t max_batch, lat_h, lat_w, lat_c, out_c, out_h, out_w, groups;
  float sf;
  bool has_pq, has_attn;
  Conv pq, conv_in, conv_out;
  Resnet mid[2];
  Attn attn;
  UpBlock *ups;
  uint32_t n_up;
  Norm norm_out;
  uint64_t weight_bytes;
  /* scratch */
  VkrtBuffer *act[3], *lat, *q, *k, *v, *o, *scores, *gn;
  uint32_t score_rows;
  uint64_t submit_flops;  /* work recorded before a submit is cut (vae_set_submit_flops) */
};

/* A decode in progress: the sequence being recorded and where the current submit began. Every
 * recording helper takes it, so the decode can be cut into submits between any two ops. */
typedef struct {
  JfVae *v;
  VkrtSeq *seq;
  GCancellable *cancel;
  double *gpu_ms;
  BudgetMeter meter;    /* work recorded into the current submit */
  gboolean ok;
  GError *error;
  GArray *prof_flops;   /* JANUSFLOW_VAE_PROFILE: FLOPs of each marked op of this submit, else NULL */
} Rec;

static VkrtTensor T(VkrtBuffer *b) { return b ? vkrt_tensor(b) : vkrt_tensor_none(); }
static VkrtTensor Tsub(VkrtBuffer *b, uint64_t floats) { return vkrt_tensor_sub(vkrt_tensor(b), 0, floats * 4); }

static gboolean load_conv(JfVae *v, const StFile *f, const char *prefix, int64_t cout, int64_t cin, Conv *c,
                          GError **error)
{
  char *wn = g_strconcat(prefix, ".weight", NULL), *bn = g_strconcat(prefix, ".bias", NULL);
  int64_t shape[4] = { cout, cin, -1, -1 }, got[4];
  gboolean ok = FALSE;
  if (!(c->w = genw_conv(v->ctx, f, v->bufs, wn, shape, got, error)))
    goto out;
  if (got[2] != got[3] || got[2] % 2 == 0) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "%s: %s must have an odd square kernel",
                safetensors_path(f), wn);
    goto out;
  }
  if (!(c->b = genw_vector(v->ctx, f, v->bufs, bn, got[0], NULL, FALSE, error)))
    goto out;
  c->cout = (uint32_t)got[0];
  c->cin = (uint32_t)got[1];
  c->k = (uint32_t)got[2];
  ok = TRUE;
out:
  g_free(wn);
  g_free(bn);
  return ok;
}

static gboolean load_norm(JfVae *v, const StFile *f, const char *prefix, int64_t c, Norm *n, GError **error)
{
  char *wn = g_strconcat(prefix, ".weight", NULL), *bn = g_strconcat(prefix, ".bias", NULL);
  gboolean ok = (n->g = genw_vector(v->ctx, f, v->bufs, wn, c, NULL, FALSE, error)) &&
                (n->b = genw_vector(v->ctx, f, v->bufs, bn, c, NULL, FALSE, error));
  n->c = (uint32_t)c;
  g_free(wn);
  g_free(bn);
  if (ok && c % v->groups) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "%s: %s has %" G_GINT64_FORMAT
                " channels, not a multiple of norm_num_groups %u", safetensors_path(f), prefix, c, v->groups);
    return FALSE;
  }
  return ok;
}

static gboolean load_resnet(JfVae *v, const StFile *f, const char *prefix, int64_t cin, int64_t cout, Resnet *r,
                            GError **error)
{
  char *p[5] = {
    g_strconcat(prefix, ".norm1", NULL), g_strconcat(prefix, ".conv1", NULL), g_strconcat(prefix, ".norm2", NULL),
    g_strconcat(prefix, ".conv2", NULL), g_strconcat(prefix, ".conv_shortcut", NULL),
  };
  char *scw = g_strconcat(p[4], ".weight", NULL);
  r->has_sc = cin != cout;
  gboolean ok = load_norm(v, f, p[0], cin, &r->n1, error) && load_conv(v, f, p[1], cout, cin, &r->c1, error) &&
                load_norm(v, f, p[2], cout, &r->n2, error) && load_conv(v, f, p[3], cout, cout, &r->c2, error) &&
                (!r->has_sc || load_conv(v, f, p[4], cout, cin, &r->sc, error));
  if (ok && r->has_sc && r->sc.k != 1) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "%s: %s must be a 1x1 convolution",
                safetensors_path(f), scw);
    ok = FALSE;
  }
  for (int i = 0; i < 5; i++)
    g_free(p[i]);
  g_free(scw);
  return ok;
}

/* to_q / query etc.: the current diffusers name first, then the legacy one. */
static VkrtBuffer *attn_tensor(JfVae *v, const StFile *f, const char *cur, const char *legacy, const char *what,
                               gboolean weight, int64_t c, GError **error)
{
  char *n = g_strdup_printf("decoder.mid_block.attentions.0.%s.%s", cur, what);
  if (!safetensors_find(f, n)) {
    g_free(n);
    n = g_strdup_printf("decoder.mid_block.attentions.0.%s.%s", legacy, what);
  }
  VkrtBuffer *b = weight ? genw_linear(v->ctx, f, v->bufs, n, c, c, NULL, NULL, error)
                         : genw_vector(v->ctx, f, v->bufs, n, c, NULL, FALSE, error);
  g_free(n);
  return b;
}

static gboolean load_attn(JfVae *v, const StFile *f, int64_t c, GError **error)
{
  Attn *a = &v->attn;
  a->c = (uint32_t)c;
  return load_norm(v, f, "decoder.mid_block.attentions.0.group_norm", c, &a->gn, error) &&
         (a->wq = attn_tensor(v, f, "to_q", "query", "weight", TRUE, c, error)) &&
         (a->bq = attn_tensor(v, f, "to_q", "query", "bias", FALSE, c, error)) &&
         (a->wk = attn_tensor(v, f, "to_k", "key", "weight", TRUE, c, error)) &&
         (a->bk = attn_tensor(v, f, "to_k", "key", "bias", FALSE, c, error)) &&
         (a->wv = attn_tensor(v, f, "to_v", "value", "weight", TRUE, c, error)) &&
         (a->bv = attn_tensor(v, f, "to_v", "value", "bias", FALSE, c, error)) &&
         (a->wo = attn_tensor(v, f, "to_out.0", "proj_attn", "weight", TRUE, c, error)) &&
         (a->bo = attn_tensor(v, f, "to_out.0", "proj_attn", "bias", FALSE, c, error));
}

/* Loads every decoder tensor and walks the resolutions to size the scratch. */
static gboolean load_all(JfVae *v, const StFile *f, const JfVaeConfig *cfg, GError **error)
{
  int nb = cfg->n_blocks;
  int64_t top = cfg->block_out_channels[nb - 1];
  v->lat_c = (uint32_t)cfg->latent_channels;
  v->groups = (uint32_t)cfg->norm_groups;
  v->sf = cfg->scaling_factor;
  /* the config says which parts exist (diffusers builds the module from it): a missing tensor of
   * a part that should be there is an error, not a part silently skipped */
  v->has_pq = cfg->post_quant_conv;
  if (v->has_pq && !load_conv(v, f, "post_quant_conv", v->lat_c, v->lat_c, &v->pq, error))
    return FALSE;
  if (!load_conv(v, f, "decoder.conv_in", top, v->lat_c, &v->conv_in, error) ||
      !load_resnet(v, f, "decoder.mid_block.resnets.0", top, top, &v->mid[0], error) ||
      !load_resnet(v, f, "decoder.mid_block.resnets.1", top, top, &v->mid[1], error))
    return FALSE;
  v->has_attn = cfg->mid_attention;
  if (v->has_attn && !load_attn(v, f, top, error))
    return FALSE;
  v->n_up = (uint32_t)nb;
  v->ups = g_new0(UpBlock, nb);
  int64_t prev = top;
  for (int i = 0; i < nb; i++) {
    UpBlock *u = &v->ups[i];
    int64_t out = cfg->block_out_channels[nb - 1 - i];
    u->n_res = (uint32_t)cfg->layers_per_block + 1;
    u->res = g_new0(Resnet, u->n_res);
    for (uint32_t j = 0; j < u->n_res; j++) {
      char *p = g_strdup_printf("decoder.up_blocks.%d.resnets.%u", i, j);
      gboolean ok = load_resnet(v, f, p, j == 0 ? prev : out, out, &u->res[j], error);
      g_free(p);
      if (!ok)
        return FALSE;
    }
    u->up = i != nb - 1;
    if (u->up) {
      char *p = g_strdup_printf("decoder.up_blocks.%d.upsamplers.0.conv", i);
      gboolean ok = load_conv(v, f, p, out, out, &u->upconv, error);
      g_free(p);
      if (!ok)
        return FALSE;
    }
    prev = out;
  }
  int64_t bottom = cfg->block_out_channels[0];
  if (!load_norm(v, f, "decoder.conv_norm_out", bottom, &v->norm_out, error) ||
      !load_conv(v, f, "decoder.conv_out", cfg->out_channels, bottom, &v->conv_out, error))
    return FALSE;
  v->out_c = v->conv_out.cout;
  return TRUE;
}

static void track(uint64_t *act, uint64_t *gn, const VkrtContext *ctx, uint64_t hw, uint32_t c, uint32_t groups,
                  gboolean is_gn)
{
  if (hw * c > *act)
    *act = hw * c;
  if (is_gn) {
    uint64_t s = vkrt_op_groupnorm_scratch_bytes(ctx, 1, (uint32_t)hw, c, groups);
    if (s > *gn)
      *gn = s;
  }
}

static gboolean alloc_scratch(JfVae *v, GError **error)
{
  uint64_t act = 0, gn = 4;
  uint64_t h = v->lat_h, w = v->lat_w;
  uint32_t top = v->conv_in.cout;
  track(&act, &gn, v->ctx, h * w, MAX(v->lat_c, top), v->groups, FALSE);
  track(&act, &gn, v->ctx, h * w, top, v->groups, TRUE);
  for (uint32_t i = 0; i < v->n_up; i++) {
    UpBlock *u = &v->ups[i];
    for (uint32_t j = 0; j < u->n_res; j++) {
      track(&act, &gn, v->ctx, h * w, u->res[j].n1.c, v->groups, TRUE);
      track(&act, &gn, v->ctx, h * w, u->res[j].n2.c, v->groups, TRUE);
    }
    if (u->up) {
      h *= 2;
      w *= 2;
      track(&act, &gn, v->ctx, h * w, u->upconv.cout, v->groups, FALSE);
    }
  }
  track(&act, &gn, v->ctx, h * w, v->norm_out.c, v->groups, TRUE);
  if (h > 65536 || w > 65536 || act * 4 > vkrt_context_info(v->ctx)->max_alloc) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "VAE: a %" G_GUINT64_FORMAT "-byte activation exceeds the "
                "device's largest allocation", act * 4);
    return FALSE;
  }
  v->out_h = (uint32_t)h;
  v->out_w = (uint32_t)w;
  uint64_t ntok = (uint64_t)v->lat_h * v->lat_w;
  /* score rows per chunk: a [rows, ntok] block must fit one binding */
  /* (the CPU form of gemm_f32 binds operands as texel buffers: respect both limits) */
  uint64_t cap = MIN(vkrt_max_binding(v->ctx, false), vkrt_max_binding(v->ctx, true));
  cap = cap > 1024 ? cap - 1024 : cap;
  uint64_t rows = MIN(ntok, cap / (ntok * 4));
  if (v->has_attn && rows == 0) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED, "VAE: one attention score row of %" G_GUINT64_FORMAT
                " tokens does not fit a binding", ntok);
    return FALSE;
  }
  v->score_rows = (uint32_t)MAX(rows, 1);
  uint64_t attn = v->has_attn ? ntok * top * 4 : 4;
  GPtrArray *o = v->bufs;
  for (int i = 0; i < 3; i++)
    if (!(v->act[i] = genw_scratch(v->ctx, o, act * 4, error)))
      return FALSE;
  return (v->lat = genw_scratch(v->ctx, o, ntok * v->lat_c * 4, error)) &&
         (v->q = genw_scratch(v->ctx, o, attn, error)) && (v->k = genw_scratch(v->ctx, o, attn, error)) &&
         (v->v = genw_scratch(v->ctx, o, attn, error)) && (v->o = genw_scratch(v->ctx, o, attn, error)) &&
         (v->scores = genw_scratch(v->ctx, o, v->has_attn ? (uint64_t)v->score_rows * ntok * 4 : 4, error)) &&
         (v->gn = genw_scratch(v->ctx, o, gn, error));
}

JfVae *vae_new(VkrtContext *ctx, const char *vae_dir, const JfVaeConfig *cfg, int max_batch, int latent_h,
               int latent_w, GError **error)
{
  g_return_val_if_fail(ctx && vae_dir, NULL);
  if (max_batch < 1 || latent_h < 1 || latent_w < 1 || latent_h > 4096 || latent_w > 4096) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "VAE: bad batch %d or latent size %dx%d",
                max_batch, latent_h, latent_w);
    return NULL;
  }
  JfVaeConfig *own_cfg = NULL;
  if (!cfg && !(cfg = own_cfg = config_load_vae(vae_dir, error)))
    return NULL;
  char *path = g_build_filename(vae_dir, "diffusion_pytorch_model.safetensors", NULL);
  StFile *f = safetensors_open(path, error);
  g_free(path);
  if (!f) {
    config_free_vae(own_cfg);
    return NULL;
  }
  JfVae *v = g_new0(JfVae, 1);
  v->ctx = ctx;
  v->submit_flops = budget_submit_flops(ctx);
  v->bufs = g_ptr_array_new_with_free_func((GDestroyNotify)vkrt_buffer_free);
  v->max_batch = (uint32_t)max_batch;
  v->lat_h = (uint32_t)latent_h;
  v->lat_w = (uint32_t)latent_w;
  gboolean ok = load_all(v, f, cfg, error);
  if (ok) {
    for (guint i = 0; i < v->bufs->len; i++)
      v->weight_bytes += vkrt_buffer_size(g_ptr_array_index(v->bufs, i));
    ok = alloc_scratch(v, error);
  }
  safetensors_close(f);
  config_free_vae(own_cfg);
  if (!ok) {
    vae_free(v);
    return NULL;
  }
  return v;
}

void vae_free(JfVae *v)
{
  if (!v)
    return;
  g_ptr_array_unref(v->bufs);
  for (uint32_t i = 0; v->ups && i < v->n_up; i++)
    g_free(v->ups[i].res);
  g_free(v->ups);
  g_free(v);
}

uint32_t vae_latent_channels(const JfVae *v) { return v->lat_c; }
uint32_t vae_out_channels(const JfVae *v) { return v->out_c; }
uint32_t vae_out_h(const JfVae *v) { return v->out_h; }
uint32_t vae_out_w(const JfVae *v) { return v->out_w; }
float vae_scaling_factor(const JfVae *v) { return v->sf; }
uint64_t vae_weight_bytes(const JfVae *v) { return v->weight_bytes; }

/* --- recording ------------------------------------------------------------------------------- */

/* Developer profile (JANUSFLOW_VAE_PROFILE=1): a timestamp after every op, and one line per op
 * on stderr after each submit (label, GPU ms, GFLOP), for docs/PERFORMANCE.md's per-op table.
 * Off by default: a mark per op is a GPU-side write on every device, and stderr is not ours. */
static void G_GNUC_PRINTF(3, 4) rec_mark(Rec *r, uint64_t flops, const char *fmt, ...)
{
  if (!r->prof_flops || !r->ok)
    return;
  va_list ap;
  va_start(ap, fmt);
  char *label = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_mark(r->seq, label);
  g_array_append_val(r->prof_flops, flops);
  g_free(label);
}

static void rec_profile_print(Rec *r)
{
  uint32_t n = 0;
  const VkrtTiming *t = vkrt_seq_timings(r->seq, &n);
  for (uint32_t i = 0; i < n; i++) {
    uint64_t fl = i < r->prof_flops->len ? g_array_index(r->prof_flops, uint64_t, i) : 0;
    g_printerr("vae-profile\t%s\t%.3f\t%.4f\n", t[i].label, t[i].ms, (double)fl * 1e-9);
  }
  g_array_set_size(r->prof_flops, 0);
}

/* Ends the current submit and starts the next one when enough work has been recorded since the
 * last cut. A driver watchdog (Windows TDR, Linux amdgpu/i915 job timeouts) kills submits of
 * more than a few seconds; the whole SDXL decoder at 384 px is about 1.4 TFLOP, many seconds on
 * a slow integrated GPU, so it must not go in one submit. Cancel is honoured between submits. */
static gboolean rec_submit(Rec *r)
{
  vkrt_seq_mark(r->seq, "vae");
  if (!vkrt_seq_submit(r->seq, &r->error))
    return r->ok = FALSE;
  if (r->gpu_ms)
    *r->gpu_ms += vkrt_seq_gpu_ms(r->seq);
  if (r->prof_flops)
    rec_profile_print(r);
  if (g_cancellable_set_error_if_cancelled(r->cancel, &r->error))
    return r->ok = FALSE;
  budget_meter_restart(&r->meter);
  vkrt_seq_begin(r->seq);
  return TRUE;
}

static gboolean rec_maybe_cut(Rec *r)
{
  if (!r->ok)
    return FALSE;
  if (!budget_meter_full(&r->meter))
    return TRUE;
  return rec_submit(r);
}

static void conv(Rec *r, const Conv *c, VkrtTensor y, VkrtTensor x, uint32_t h, uint32_t w, uint32_t flags)
{
  if (!rec_maybe_cut(r))
    return;
  VkrtSeq *seq = r->seq;
  VkrtConvParams p = {
    .batch = 1, .in_h = h, .in_w = w, .in_c = c->cin, .out_c = c->cout,
    .kernel_h = c->k, .kernel_w = c->k, .stride = 1, .pad = c->k / 2, .flags = flags,
  };
  vkrt_op_conv2d(seq, y, x, T(c->w), T(c->b), &p);
  uint32_t ho = flags & VKRT_CONV_UPSAMPLE2X ? 2 * h : h, wo = flags & VKRT_CONV_UPSAMPLE2X ? 2 * w : w;
  rec_mark(r, 2ull * ho * wo * c->cout * c->cin * c->k * c->k, "conv%ux%u%s %u>%u %ux%u", c->k, c->k,
           flags & VKRT_CONV_UPSAMPLE2X ? " up2x" : "", c->cin, c->cout, ho, wo);
}

static void groupnorm(Rec *r, const Norm *n, VkrtTensor y, VkrtTensor x, uint64_t hw, bool silu)
{
  JfVae *v = r->v;
  if (!r->ok)
    return;
  vkrt_op_groupnorm(r->seq, y, x, T(n->g), T(n->b), T(v->gn), 1, (uint32_t)hw, n->c, v->groups, VAE_EPS, silu);
  rec_mark(r, 0, "groupnorm%s %u x%" G_GUINT64_FORMAT, silu ? "+silu" : "", n->c, hw);
}

/* ResnetBlock2D on act[cur] at h x w; returns the index of the buffer holding the output. */
static int resnet(Rec *rec, const Resnet *r, int cur, uint32_t h, uint32_t w)
{
  JfVae *v = rec->v;
  uint64_t hw = (uint64_t)h * w;
  int a = (cur + 1) % 3, b = (cur + 2) % 3;
  VkrtTensor x = Tsub(v->act[cur], hw * r->c1.cin), ta = Tsub(v->act[a], hw * r->c1.cin);
  VkrtTensor tb = Tsub(v->act[b], hw * r->c1.cout);
  groupnorm(rec, &r->n1, ta, x, hw, true);
  conv(rec, &r->c1, tb, ta, h, w, 0);
  groupnorm(rec, &r->n2, tb, tb, hw, true);
  if (!r->has_sc) {
    conv(rec, &r->c2, x, tb, h, w, VKRT_CONV_ACCUMULATE);
    return cur;
  }
  VkrtTensor sc = Tsub(v->act[a], hw * r->c2.cout);
  conv(rec, &r->sc, sc, x, h, w, 0);
  conv(rec, &r->c2, sc, tb, h, w, VKRT_CONV_ACCUMULATE);
  return a;
}

/* Single-head self-attention over the h*w tokens of act[cur], residual added in place. The score
 * matrix is built in blocks of query rows (softmax(q k^T / sqrt(c)) v): vkrt_op_attention is
 * limited to heads of 256 and SDXL's head is 512 wide. v is transposed once so that both
 * products have the x . b^T form of vkrt_op_gemm_f32. */
static void attention(Rec *r, int cur, uint32_t h, uint32_t w)
{
  if (!rec_maybe_cut(r))
    return;
  JfVae *v = r->v;
  VkrtSeq *seq = r->seq;
  const Attn *at = &v->attn;
  uint32_t N = h * w, C = at->c;
  uint64_t nc = (uint64_t)N * C;
  VkrtTensor x = Tsub(v->act[cur], nc), hn = Tsub(v->act[(cur + 1) % 3], nc);
  VkrtTensor q = Tsub(v->q, nc), k = Tsub(v->k, nc), vv = Tsub(v->v, nc), o = Tsub(v->o, nc);
  VkrtTensor vt = Tsub(v->act[(cur + 2) % 3], nc);
  groupnorm(r, &at->gn, hn, x, N, false);
  vkrt_op_matmul(seq, q, hn, T(at->wq), T(at->bq), N, C, C, 0);
  vkrt_op_matmul(seq, k, hn, T(at->wk), T(at->bk), N, C, C, 0);
  vkrt_op_matmul(seq, vv, hn, T(at->wv), T(at->bv), N, C, C, 0);
  rec_mark(r, 3 * 2ull * N * C * C, "attn qkv 3x matmul %ux%ux%u", N, C, C);
  vkrt_op_transpose(seq, vt, vv, N, C);
  rec_mark(r, 0, "attn transpose v %ux%u", N, C);
  float scale = (float)(1.0 / sqrt((double)C));
  for (uint32_t r0 = 0; r0 < N; r0 += v->score_rows) {
    uint32_t nr = MIN(v->score_rows, N - r0);
    VkrtTensor s = Tsub(v->scores, (uint64_t)nr * N);
    vkrt_op_gemm_f32(seq, s, vkrt_tensor_sub(q, (uint64_t)r0 * C * 4, (uint64_t)nr * C * 4), k, nr, N, C);
    rec_mark(r, 2ull * nr * N * C, "attn q.k^T %ux%ux%u", nr, N, C);
    vkrt_op_softmax(seq, s, nr, N, scale);
    rec_mark(r, 0, "attn softmax %ux%u", nr, N);
    vkrt_op_gemm_f32(seq, vkrt_tensor_sub(o, (uint64_t)r0 * C * 4, (uint64_t)nr * C * 4), s, vt, nr, C, N);
    rec_mark(r, 2ull * nr * N * C, "attn p.v %ux%ux%u", nr, C, N);
  }
  vkrt_op_matmul(seq, x, o, T(at->wo), T(at->bo), N, C, C, VKRT_MM_ACCUMULATE);
  rec_mark(r, 2ull * N * C * C, "attn out matmul %ux%ux%u", N, C, C);
}

static void decode_one(Rec *r, VkrtTensor latent, VkrtTensor out)
{
  JfVae *v = r->v;
  uint32_t h = v->lat_h, w = v->lat_w;
  uint64_t nl = (uint64_t)v->lat_c * h * w;
  VkrtTensor lat = Tsub(v->lat, nl);
  /* JanusFlow decodes z / scaling_factor; the division is done here, in fp32 */
  vkrt_op_scale_shift(r->seq, lat, latent, nl, 1.0f / v->sf, 0.0f);
  rec_mark(r, 0, "scale_shift %" G_GUINT64_FORMAT, nl);
  VkrtTensor src = lat;
  uint32_t src_flags = VKRT_CONV_IN_NCHW;
  if (v->has_pq) {
    conv(r, &v->pq, Tsub(v->act[1], nl), lat, h, w, VKRT_CONV_IN_NCHW);
    src = Tsub(v->act[1], nl);
    src_flags = 0;
  }
  conv(r, &v->conv_in, Tsub(v->act[0], (uint64_t)h * w * v->conv_in.cout), src, h, w, src_flags);
  int cur = resnet(r, &v->mid[0], 0, h, w);
  if (v->has_attn)
    attention(r, cur, h, w);
  cur = resnet(r, &v->mid[1], cur, h, w);
  for (uint32_t i = 0; i < v->n_up; i++) {
    const UpBlock *u = &v->ups[i];
    for (uint32_t j = 0; j < u->n_res; j++)
      cur = resnet(r, &u->res[j], cur, h, w);
    if (u->up) {
      int nxt = (cur + 1) % 3;
      uint32_t c = u->upconv.cout;
      conv(r, &u->upconv, Tsub(v->act[nxt], (uint64_t)4 * h * w * c), Tsub(v->act[cur], (uint64_t)h * w * c),
           h, w, VKRT_CONV_UPSAMPLE2X);
      cur = nxt;
      h *= 2;
      w *= 2;
    }
  }
  uint64_t hw = (uint64_t)h * w;
  int nxt = (cur + 1) % 3;
  VkrtTensor hn = Tsub(v->act[nxt], hw * v->norm_out.c);
  groupnorm(r, &v->norm_out, hn, Tsub(v->act[cur], hw * v->norm_out.c), hw, true);
  conv(r, &v->conv_out, out, hn, h, w, VKRT_CONV_OUT_NCHW);
}

void vae_set_submit_flops(JfVae *v, uint64_t flops) { v->submit_flops = flops ? flops : budget_submit_flops(v->ctx); }

gboolean vae_decode(JfVae *v, VkrtSeq *seq, uint32_t n, VkrtTensor latent, VkrtTensor out_rgb,
                    GCancellable *cancel, double *gpu_ms, GError **error)
{
  uint64_t lat_bytes = (uint64_t)v->lat_c * v->lat_h * v->lat_w * 4;
  uint64_t out_bytes = (uint64_t)v->out_c * v->out_h * v->out_w * 4;
  if (n == 0 || n > v->max_batch || !latent.buf || !out_rgb.buf || latent.size < n * lat_bytes ||
      out_rgb.size < n * out_bytes) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED,
                "vae_decode: %u images (at most %u), latent %" G_GUINT64_FORMAT " bytes (%" G_GUINT64_FORMAT
                " needed), output %" G_GUINT64_FORMAT " bytes (%" G_GUINT64_FORMAT " needed)",
                n, v->max_batch, latent.size, n * lat_bytes, out_rgb.size, n * out_bytes);
    return FALSE;
  }
  Rec r = { .v = v, .seq = seq, .cancel = cancel, .gpu_ms = gpu_ms, .ok = TRUE };
  const char *prof = g_getenv("JANUSFLOW_VAE_PROFILE");
  if (prof && *prof && g_strcmp0(prof, "0") != 0)
    r.prof_flops = g_array_new(FALSE, FALSE, sizeof(uint64_t));
  budget_meter_init(&r.meter, vkrt_seq_context(seq), v->submit_flops);
  vkrt_seq_begin(seq);
  for (uint32_t b = 0; b < n && r.ok; b++)
    decode_one(&r, vkrt_tensor_sub(latent, b * lat_bytes, lat_bytes),
               vkrt_tensor_sub(out_rgb, b * out_bytes, out_bytes));
  if (r.ok)
    rec_submit(&r);
  if (r.prof_flops)
    g_array_unref(r.prof_flops);
  if (!r.ok) {
    g_propagate_error(error, r.error);
    return FALSE;
  }
  return TRUE;
}
