/* uvit: see uvit.h. Everything between the latent and the LLM is channel-last ([rows, tokens,
 * channels]), so RMSNorm, the Linears, GRN and FiLM act on the last dimension and only the
 * depthwise 7x7 and in_conv are spatial (MODEL.md §4.10). */
#include "uvit.h"
#include "gen_weights.h"
#include "ops.h"
#include "ops_gen.h"
#include <math.h>

typedef struct {
  VkrtBuffer *dw_w, *dw_b, *norm_w, *l1_w, *l1_b, *grn_g, *grn_b, *l2_w, *l2_b, *map_w, *map_b;
  uint32_t c, ffn, k;
} Block;

/* One of the decoder's out_convs (Unpatchify): RMSNorm over cin, 1x1 conv to cout * r * r,
 * PixelShuffle(r). JanusFlow-1.3B has one (upsamples 1); the official default has two. */
#define UVIT_MAX_UP 8
typedef struct {
  VkrtBuffer *norm, *w, *b;
  uint32_t cin, cout, r;
} Unpatch;

struct JfUvit {
  VkrtContext *ctx;
  GPtrArray *bufs;                 /* every buffer below; freed together */
  uint32_t max_batch, lat_c, lat_h, lat_w;
  uint32_t hidden, t_in;           /* LLM width; sinusoid features */
  uint32_t ce, k_in, stride, pad, gh, gw, n_tok;
  uint32_t cd, c2, co, r;          /* decoder: aligner width, block width, out channels, total
                                    * upscale of the out_convs (the product of their r) */
  float enc_eps, dec_eps, llm_eps;
  uint64_t weight_bytes;

  VkrtBuffer *te_w1, *te_b1, *te_w2, *te_b2, *in_w, *in_b, *ea_w, *ea_b;
  Block *enc, *dec;
  uint32_t n_enc, n_dec;
  VkrtBuffer *da_norm, *da_w, *da_b, *in_norm;
  Unpatch up[UVIT_MAX_UP];
  uint32_t n_up;

  /* scratch */
  VkrtBuffer *feat, *t_hid, *t_silu, *mod, *skip, *dw, *ffn, *x2, *norm, *dec_in, *patch, *grn;
  VkrtBuffer *stage;               /* between two out_convs (channel-last); NULL with one */
  uint32_t skip_rows, dec_rows;    /* what the last encode / decode recorded */
};

static VkrtTensor T(VkrtBuffer *b) { return b ? vkrt_tensor(b) : vkrt_tensor_none(); }
static VkrtTensor Tsub(VkrtBuffer *b, uint64_t floats) { return vkrt_tensor_sub(vkrt_tensor(b), 0, floats * 4); }

static gboolean mismatch(GError **error, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean mismatch(GError **error, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *m = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "generation modules: %s", m);
  g_free(m);
  return FALSE;
}

/* A bias of a Linear/Conv built with bias=use_bias, loaded only when use_bias says it exists
 * (then it must be there; without it a stray tensor is not used, as the official module would
 * not have it). */
static VkrtBuffer *load_bias(JfUvit *u, const StFile *f, const char *name, int64_t n, GError **error)
{
  return genw_vector(u->ctx, f, u->bufs, name, n, NULL, FALSE, error);
}

static gboolean load_block(JfUvit *u, const StFile *f, const char *prefix, int i, int64_t c, bool use_bias,
                           Block *b, GError **error)
{
  VkrtContext *ctx = u->ctx;
  char *p = g_strdup_printf("%s.mid_block.res_blocks.%d.", prefix, i);
  char name[512];
  int64_t k = 0, ffn = 0;
  gboolean ok = FALSE;
#define N(s) (g_snprintf(name, sizeof name, "%s%s", p, s), name)
  if (!(b->dw_w = genw_dwconv(ctx, f, u->bufs, N("depthwise.weight"), c, &k, error)))
    goto out;
  if (!(b->norm_w = genw_vector(ctx, f, u->bufs, N("norm.weight"), c, NULL, FALSE, error)) ||
      !(b->l1_w = genw_linear(ctx, f, u->bufs, N("channelwise_linear_1.weight"), -1, c, &ffn, NULL, error)) ||
      !(b->grn_g = genw_vector(ctx, f, u->bufs, N("channelwise_norm.weight"), ffn, NULL, FALSE, error)) ||
      !(b->grn_b = genw_vector(ctx, f, u->bufs, N("channelwise_norm.bias"), ffn, NULL, FALSE, error)) ||
      !(b->l2_w = genw_linear(ctx, f, u->bufs, N("channelwise_linear_2.weight"), c, ffn, NULL, NULL, error)) ||
      !(b->map_w = genw_linear(ctx, f, u->bufs, N("cond_embeds_mapper.weight"), 2 * c, u->hidden, NULL, NULL, error)))
    goto out;
  if (use_bias && (!(b->dw_b = load_bias(u, f, N("depthwise.bias"), c, error)) ||
                   !(b->l1_b = load_bias(u, f, N("channelwise_linear_1.bias"), ffn, error)) ||
                   !(b->l2_b = load_bias(u, f, N("channelwise_linear_2.bias"), c, error)) ||
                   !(b->map_b = load_bias(u, f, N("cond_embeds_mapper.bias"), 2 * c, error))))
    goto out;
#undef N
  b->c = (uint32_t)c;
  b->ffn = (uint32_t)ffn;
  b->k = (uint32_t)k;
  ok = TRUE;
out:
  g_free(p);
  return ok;
}

static uint64_t bytes_of(GPtrArray *bufs)
{
  uint64_t s = 0;
  for (guint i = 0; i < bufs->len; i++)
    s += vkrt_buffer_size(g_ptr_array_index(bufs, i));
  return s;
}

static gboolean load_weights(JfUvit *u, const StFile *f, const JfModelConfig *cfg, GError **error)
{
  VkrtContext *ctx = u->ctx;
  GPtrArray *o = u->bufs;
  int64_t t_in = 0, hid = cfg->llm.hidden;
  u->hidden = (uint32_t)hid;
  /* time embedding: the sinusoid width comes from linear_1 */
  if (!(u->te_w1 = genw_linear(ctx, f, o, "vision_gen_enc_model.time_embed.linear_1.weight", hid, -1, NULL, &t_in, error)) ||
      !(u->te_w2 = genw_linear(ctx, f, o, "vision_gen_enc_model.time_embed.linear_2.weight", hid, hid, NULL, NULL, error)))
    return FALSE;
  if (cfg->gen_enc.use_bias &&
      (!(u->te_b1 = load_bias(u, f, "vision_gen_enc_model.time_embed.linear_1.bias", hid, error)) ||
       !(u->te_b2 = load_bias(u, f, "vision_gen_enc_model.time_embed.linear_2.bias", hid, error))))
    return FALSE;
  if (t_in < 1)
    return mismatch(error, "time_embed.linear_1 takes %" G_GINT64_FORMAT " features", t_in);
  u->t_in = (uint32_t)t_in;

  /* in_conv: kernel from the tensor, stride and padding from the config */
  int64_t ish[4] = { cfg->gen_enc.channels, cfg->gen_enc.in_channels, -1, -1 }, got[4];
  if (!(u->in_w = genw_conv(ctx, f, o, "vision_gen_enc_model.in_conv.weight", ish, got, error)))
    return FALSE;
  u->in_b = genw_vector(ctx, f, o, "vision_gen_enc_model.in_conv.bias", got[0], NULL, TRUE, error);
  if (error && *error)
    return FALSE;
  if (got[2] != got[3] || got[2] < cfg->gen_enc.stride)
    return mismatch(error, "in_conv kernel %" G_GINT64_FORMAT "x%" G_GINT64_FORMAT " with stride %d is not supported",
                    got[2], got[3], cfg->gen_enc.stride);
  u->ce = (uint32_t)got[0];
  u->lat_c = (uint32_t)got[1];
  u->k_in = (uint32_t)got[2];
  u->stride = (uint32_t)cfg->gen_enc.stride;
  u->pad = (uint32_t)cfg->gen_enc.padding;
  u->enc_eps = cfg->gen_enc.norm_eps;
  u->dec_eps = cfg->gen_dec.norm_eps;
  u->llm_eps = cfg->llm.rms_eps;

  u->n_enc = (uint32_t)cfg->gen_enc.layers_in_middle;
  u->enc = g_new0(Block, MAX(u->n_enc, 1));
  for (uint32_t i = 0; i < u->n_enc; i++)
    if (!load_block(u, f, "vision_gen_enc_model", (int)i, u->ce, cfg->gen_enc.use_bias, &u->enc[i], error))
      return FALSE;
  if (!(u->ea_w = genw_linear(ctx, f, o, "vision_gen_enc_aligner.weight", hid, u->ce, NULL, NULL, error)))
    return FALSE;
  u->ea_b = genw_vector(ctx, f, o, "vision_gen_enc_aligner.bias", hid, NULL, TRUE, error);
  if (error && *error)
    return FALSE;

  /* decoder side */
  int64_t cd = 0;
  if (!(u->da_norm = genw_vector(ctx, f, o, "vision_gen_dec_aligner_norm.weight", hid, NULL, FALSE, error)) ||
      !(u->da_w = genw_linear(ctx, f, o, "vision_gen_dec_aligner.weight", cfg->gen_dec.in_channels, hid, &cd, NULL, error)))
    return FALSE;
  u->da_b = genw_vector(ctx, f, o, "vision_gen_dec_aligner.bias", cd, NULL, TRUE, error);
  if (error && *error)
    return FALSE;
  if (!(u->in_norm = genw_vector(ctx, f, o, "vision_gen_dec_model.input_norm.weight", cd, NULL, FALSE, error)))
    return FALSE;
  u->cd = (uint32_t)cd;
  if ((uint32_t)cfg->gen_dec.channels != u->ce)
    return mismatch(error, "decoder block_out_channels %d differ from the encoder's %u (the skip)",
                    cfg->gen_dec.channels, u->ce);
  u->c2 = u->cd + u->ce;
  u->n_dec = (uint32_t)cfg->gen_dec.layers_in_middle;
  u->dec = g_new0(Block, MAX(u->n_dec, 1));
  for (uint32_t i = 0; i < u->n_dec; i++)
    if (!load_block(u, f, "vision_gen_dec_model", (int)i, u->c2, cfg->gen_dec.use_bias, &u->dec[i], error))
      return FALSE;
  u->co = (uint32_t)cfg->gen_dec.out_channels;
  if (u->co != u->lat_c)
    return mismatch(error, "decoder out_channels %u differ from the latent's %u channels", u->co, u->lat_c);
  u->n_up = (uint32_t)cfg->gen_dec.upsamples;
  if (u->n_up < 1 || u->n_up > UVIT_MAX_UP)
    return mismatch(error, "decoder upsamples = %u (1..%d)", u->n_up, UVIT_MAX_UP);
  u->r = 1;
  for (uint32_t k = 0; k < u->n_up; k++) {
    Unpatch *up = &u->up[k];
    /* the first takes [LLM-derived | skip], the others the block width; the last gives the latent */
    up->cin = k == 0 ? u->c2 : (uint32_t)cfg->gen_dec.channels;
    up->cout = k + 1 == u->n_up ? u->co : (uint32_t)cfg->gen_dec.channels;
    char name[128];
    int64_t up_out = 0;
    g_snprintf(name, sizeof name, "vision_gen_dec_model.out_convs.%u.norm.weight", k);
    if (!(up->norm = genw_vector(ctx, f, o, name, up->cin, NULL, FALSE, error)))
      return FALSE;
    g_snprintf(name, sizeof name, "vision_gen_dec_model.out_convs.%u.unpatch_conv.weight", k);
    if (!(up->w = genw_linear(ctx, f, o, name, -1, up->cin, &up_out, NULL, error)))
      return FALSE;
    g_snprintf(name, sizeof name, "vision_gen_dec_model.out_convs.%u.unpatch_conv.bias", k);
    if (cfg->gen_dec.use_bias && !(up->b = load_bias(u, f, name, up_out, error)))
      return FALSE;
    up->r = (uint32_t)lround(sqrt((double)up_out / up->cout));
    if ((int64_t)up->cout * up->r * up->r != up_out || up->r == 0)
      return mismatch(error, "out_convs.%u.unpatch_conv has %" G_GINT64_FORMAT " outputs, not %u channels times a square",
                      k, up_out, up->cout);
    u->r *= up->r;
  }
  u->weight_bytes = bytes_of(o);
  return TRUE;
}

static gboolean alloc_scratch(JfUvit *u, GError **error)
{
  uint64_t mb = u->max_batch, rows = 2 * mb, T = u->n_tok;
  uint32_t ffn = 1, cmax = MAX(u->ce, u->c2);
  for (uint32_t i = 0; i < u->n_enc; i++) ffn = MAX(ffn, u->enc[i].ffn);
  for (uint32_t i = 0; i < u->n_dec; i++) ffn = MAX(ffn, u->dec[i].ffn);
  uint64_t dw = MAX(MAX(mb * T * u->ce, rows * T * u->c2), rows * T * u->cd);
  /* out_convs: stage k reads T * s^2 tokens (s = the upscale so far) of cin channels, normalised
   * into dw, writes cout * r^2 per token to patch, shuffled into stage (or the velocity) */
  uint64_t patch = 0, stage = 0, sc = 1;
  for (uint32_t k = 0; k < u->n_up; k++) {
    const Unpatch *up = &u->up[k];
    uint64_t tok = rows * T * sc * sc;
    dw = MAX(dw, tok * up->cin);
    patch = MAX(patch, tok * up->cout * up->r * up->r);
    sc *= up->r;
    if (k + 1 < u->n_up) stage = MAX(stage, rows * T * sc * sc * up->cout);
  }
  GPtrArray *o = u->bufs;
  VkrtContext *c = u->ctx;
  return (u->feat = genw_scratch(c, o, rows * u->t_in * 4, error)) &&
         (u->t_hid = genw_scratch(c, o, rows * u->hidden * 4, error)) &&
         (u->t_silu = genw_scratch(c, o, rows * u->hidden * 4, error)) &&
         (u->mod = genw_scratch(c, o, rows * 2 * cmax * 4, error)) &&
         (u->skip = genw_scratch(c, o, mb * T * u->ce * 4, error)) &&
         (u->dw = genw_scratch(c, o, dw * 4, error)) &&
         (u->ffn = genw_scratch(c, o, rows * T * ffn * 4, error)) &&
         (u->x2 = genw_scratch(c, o, rows * T * u->c2 * 4, error)) &&
         (u->norm = genw_scratch(c, o, rows * T * u->hidden * 4, error)) &&
         (u->dec_in = genw_scratch(c, o, rows * T * u->cd * 4, error)) &&
         (u->patch = genw_scratch(c, o, patch * 4, error)) &&
         (!stage || (u->stage = genw_scratch(c, o, stage * 4, error))) &&
         (u->grn = genw_scratch(c, o, vkrt_op_grn_scratch_bytes((uint32_t)rows, ffn), error));
}

JfUvit *uvit_new(VkrtContext *ctx, const StFile *f, const JfModelConfig *cfg, int max_batch,
                 int latent_h, int latent_w, GError **error)
{
  g_return_val_if_fail(ctx && f && cfg, NULL);
  if (max_batch < 1 || latent_h < 1 || latent_w < 1 || max_batch > 4096 || latent_h > 65536 || latent_w > 65536) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "generation modules: bad batch %d or latent size %dx%d",
                max_batch, latent_h, latent_w);
    return NULL;
  }
  JfUvit *u = g_new0(JfUvit, 1);
  u->ctx = ctx;
  u->bufs = g_ptr_array_new_with_free_func((GDestroyNotify)vkrt_buffer_free);
  u->max_batch = (uint32_t)max_batch;
  u->lat_h = (uint32_t)latent_h;
  u->lat_w = (uint32_t)latent_w;
  GError *err = NULL;  /* never NULL inside: optional tensors report bad shapes through it */
  if (!load_weights(u, f, cfg, &err)) {
    g_propagate_error(error, err);
    goto fail;
  }
  u->gh = vkrt_conv_out_size(u->lat_h, u->k_in, u->stride, u->pad, false);
  u->gw = vkrt_conv_out_size(u->lat_w, u->k_in, u->stride, u->pad, false);
  u->n_tok = u->gh * u->gw;
  if (!u->n_tok || u->gh * u->r != u->lat_h || u->gw * u->r != u->lat_w) {
    mismatch(error, "latent %ux%u gives a %ux%u token grid that unpatches to %ux%u",
             u->lat_h, u->lat_w, u->gh, u->gw, u->gh * u->r, u->gw * u->r);
    goto fail;
  }
  if (!alloc_scratch(u, error))
    goto fail;
  return u;
fail:
  uvit_free(u);
  return NULL;
}

void uvit_free(JfUvit *u)
{
  if (!u)
    return;
  g_ptr_array_unref(u->bufs);
  g_free(u->enc);
  g_free(u->dec);
  g_free(u);
}

uint32_t uvit_n_tokens(const JfUvit *u) { return u->n_tok; }
uint32_t uvit_hidden(const JfUvit *u) { return u->hidden; }
uint32_t uvit_latent_channels(const JfUvit *u) { return u->lat_c; }
uint32_t uvit_max_batch(const JfUvit *u) { return u->max_batch; }
uint64_t uvit_weight_bytes(const JfUvit *u) { return u->weight_bytes; }

VkrtTensor uvit_skip(JfUvit *u, uint32_t *channels)
{
  if (channels) *channels = u->ce;
  return Tsub(u->skip, (uint64_t)MAX(u->skip_rows, 1) * u->n_tok * u->ce);
}

VkrtTensor uvit_dec_input(JfUvit *u, uint32_t *channels)
{
  if (channels) *channels = u->cd;
  return Tsub(u->dec_in, (uint64_t)MAX(u->dec_rows, 1) * u->n_tok * u->cd);
}

gboolean uvit_set_time(JfUvit *u, const float *t, uint32_t n, GError **error)
{
  if (n == 0 || n > 2 * u->max_batch || !t) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "uvit_set_time: %u rows (at most %u)", n, 2 * u->max_batch);
    return FALSE;
  }
  uint32_t half = u->t_in / 2;
  float *feat = g_new0(float, (size_t)n * u->t_in);
  /* diffusers' get_timestep_embedding in fp32: exponent = -ln(10000) * j (fp32), / half (fp32),
   * exp (fp32), t * freq (fp32). The rounded argument (up to ~1000 rad) is what the reference
   * takes sin/cos of; sin/cos themselves are evaluated in double. An odd width ends in one zero
   * feature (diffusers pads). */
  const float ln_period = (float)log(10000.0);
  for (uint32_t r = 0; r < n; r++)
    for (uint32_t j = 0; j < half; j++) {
      float e = (-ln_period * (float)j) / (float)half;
      float freq = (float)exp((double)e);
      float arg = t[r] * freq;
      feat[(size_t)r * u->t_in + j] = (float)cos((double)arg);
      feat[(size_t)r * u->t_in + half + j] = (float)sin((double)arg);
    }
  gboolean ok = vkrt_buffer_write(u->feat, 0, feat, (uint64_t)n * u->t_in * 4, error);
  g_free(feat);
  return ok;
}

static void seq_fail(VkrtSeq *seq, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static void seq_fail(VkrtSeq *seq, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *m = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED, "uvit: %s", m));
  g_free(m);
}

void uvit_record_time_embed(JfUvit *u, VkrtSeq *seq, uint32_t n, VkrtTensor t_emb)
{
  if (n == 0 || n > 2 * u->max_batch) {
    seq_fail(seq, "time embedding of %u rows (at most %u)", n, 2 * u->max_batch);
    return;
  }
  vkrt_op_matmul(seq, Tsub(u->t_hid, (uint64_t)n * u->hidden), Tsub(u->feat, (uint64_t)n * u->t_in),
                 T(u->te_w1), T(u->te_b1), n, u->hidden, u->t_in, VKRT_MM_SILU);
  vkrt_op_matmul(seq, t_emb, Tsub(u->t_hid, (uint64_t)n * u->hidden), T(u->te_w2), T(u->te_b2),
                 n, u->hidden, u->hidden, 0);
}

/* One ConvNeXt block (MODEL.md §4.5) in place on x [rows, n_tok, C]; the FiLM modulation of row
 * r comes from t_silu row r % mod_rows. */
static void record_block(JfUvit *u, VkrtSeq *seq, const Block *b, VkrtTensor x, uint32_t rows,
                         uint32_t mod_rows, float eps)
{
  uint64_t M = (uint64_t)rows * u->n_tok;
  VkrtTensor dw = Tsub(u->dw, M * b->c), ffn = Tsub(u->ffn, M * b->ffn);
  VkrtTensor mod = Tsub(u->mod, (uint64_t)mod_rows * 2 * b->c);
  vkrt_op_dwconv2d(seq, dw, x, T(b->dw_w), T(b->dw_b), rows, u->gh, u->gw, b->c, b->k, b->k / 2);
  vkrt_op_rmsnorm(seq, dw, dw, T(b->norm_w), (uint32_t)M, b->c, eps);
  vkrt_op_matmul(seq, ffn, dw, T(b->l1_w), T(b->l1_b), (uint32_t)M, b->ffn, b->c, VKRT_MM_GELU);
  vkrt_op_grn(seq, ffn, T(b->grn_g), T(b->grn_b), T(u->grn), rows, u->n_tok, b->ffn);
  /* residual added before the modulation */
  vkrt_op_matmul(seq, x, ffn, T(b->l2_w), T(b->l2_b), (uint32_t)M, b->c, b->ffn, VKRT_MM_ACCUMULATE);
  vkrt_op_matmul(seq, mod, Tsub(u->t_silu, (uint64_t)mod_rows * u->hidden), T(b->map_w), T(b->map_b),
                 mod_rows, 2 * b->c, u->hidden, 0);
  vkrt_op_film(seq, x, mod, rows, u->n_tok, b->c, mod_rows);
}

void uvit_record_encode(JfUvit *u, VkrtSeq *seq, uint32_t n, VkrtTensor z, VkrtTensor t_emb,
                        VkrtTensor tokens, uint64_t tokens_stride)
{
  uint64_t tok = (uint64_t)u->n_tok * u->hidden;
  if (tokens_stride == 0)
    tokens_stride = tok;
  if (n == 0 || n > u->max_batch || tokens_stride < tok) {
    seq_fail(seq, "encode of %u images (at most %u), token stride %" G_GUINT64_FORMAT, n, u->max_batch, tokens_stride);
    return;
  }
  u->skip_rows = n;
  VkrtTensor skip = Tsub(u->skip, (uint64_t)n * u->n_tok * u->ce);
  vkrt_op_silu(seq, Tsub(u->t_silu, (uint64_t)n * u->hidden), t_emb, (uint64_t)n * u->hidden);
  VkrtConvParams cp = {
    .batch = n, .in_h = u->lat_h, .in_w = u->lat_w, .in_c = u->lat_c, .out_c = u->ce,
    .kernel_h = u->k_in, .kernel_w = u->k_in, .stride = u->stride, .pad = u->pad, .flags = VKRT_CONV_IN_NCHW,
  };
  vkrt_op_conv2d(seq, skip, z, T(u->in_w), T(u->in_b), &cp);
  for (uint32_t i = 0; i < u->n_enc; i++)
    record_block(u, seq, &u->enc[i], skip, n, n, u->enc_eps);
  if (tokens_stride == tok) {
    vkrt_op_matmul(seq, vkrt_tensor_sub(tokens, 0, n * tok * 4), skip, T(u->ea_w), T(u->ea_b),
                   n * u->n_tok, u->hidden, u->ce, 0);
    return;
  }
  for (uint32_t b = 0; b < n; b++)
    vkrt_op_matmul(seq, vkrt_tensor_sub(tokens, b * tokens_stride * 4, tok * 4),
                   vkrt_tensor_sub(skip, (uint64_t)b * u->n_tok * u->ce * 4, (uint64_t)u->n_tok * u->ce * 4),
                   T(u->ea_w), T(u->ea_b), u->n_tok, u->hidden, u->ce, 0);
}

void uvit_record_decode(JfUvit *u, VkrtSeq *seq, uint32_t rows, VkrtTensor hidden,
                        uint64_t hidden_stride, VkrtTensor t_emb, uint32_t n, VkrtTensor velocity)
{
  uint64_t per = (uint64_t)u->n_tok * u->hidden;
  if (hidden_stride == 0)
    hidden_stride = per;
  if (n == 0 || n != u->skip_rows || rows == 0 || rows > 2 * u->max_batch || rows % n || hidden_stride < per) {
    seq_fail(seq, "decode of %u rows for %u images (encoded %u, at most %u rows), hidden stride %" G_GUINT64_FORMAT,
             rows, n, u->skip_rows, 2 * u->max_batch, hidden_stride);
    return;
  }
  u->dec_rows = rows;
  uint64_t M = (uint64_t)rows * u->n_tok;
  VkrtTensor norm = Tsub(u->norm, M * u->hidden), dec_in = Tsub(u->dec_in, M * u->cd);
  VkrtTensor x2 = Tsub(u->x2, M * u->c2), tmp = Tsub(u->dw, M * u->cd);
  vkrt_op_silu(seq, Tsub(u->t_silu, (uint64_t)n * u->hidden), t_emb, (uint64_t)n * u->hidden);
  /* vision_gen_dec_aligner_norm (a second RMSNorm after the LLM's own) + aligner */
  if (hidden_stride == per) {
    vkrt_op_rmsnorm(seq, norm, vkrt_tensor_sub(hidden, 0, M * u->hidden * 4), T(u->da_norm), (uint32_t)M,
                    u->hidden, u->llm_eps);
  } else {
    for (uint32_t r = 0; r < rows; r++)
      vkrt_op_rmsnorm(seq, vkrt_tensor_sub(norm, r * per * 4, per * 4),
                      vkrt_tensor_sub(hidden, r * hidden_stride * 4, per * 4), T(u->da_norm), u->n_tok,
                      u->hidden, u->llm_eps);
  }
  vkrt_op_matmul(seq, dec_in, norm, T(u->da_w), T(u->da_b), (uint32_t)M, u->cd, u->hidden, 0);
  vkrt_op_rmsnorm(seq, tmp, dec_in, T(u->in_norm), (uint32_t)M, u->cd, u->dec_eps);
  /* [LLM-derived | skip of image r % n] */
  vkrt_op_concat(seq, x2, tmp, Tsub(u->skip, (uint64_t)n * u->n_tok * u->ce), rows, u->n_tok, u->cd, u->ce, n);
  for (uint32_t i = 0; i < u->n_dec; i++)
    record_block(u, seq, &u->dec[i], x2, rows, n, u->dec_eps);
  VkrtTensor in = x2;
  uint32_t h = u->gh, w = u->gw;
  for (uint32_t k = 0; k < u->n_up; k++) {
    const Unpatch *up = &u->up[k];
    uint64_t tok = (uint64_t)rows * h * w;
    uint32_t nout = up->cout * up->r * up->r;
    VkrtTensor on = Tsub(u->dw, tok * up->cin), patch = Tsub(u->patch, tok * nout);
    vkrt_op_rmsnorm(seq, on, in, T(up->norm), (uint32_t)tok, up->cin, u->dec_eps);
    vkrt_op_matmul(seq, patch, on, T(up->w), T(up->b), (uint32_t)tok, nout, up->cin, 0);
    if (k + 1 == u->n_up) {
      vkrt_op_pixel_shuffle(seq, velocity, patch, rows, h, w, up->cout, up->r);
    } else {
      in = Tsub(u->stage, tok * nout);
      vkrt_op_pixel_shuffle_nhwc(seq, in, patch, rows, h, w, up->cout, up->r);
    }
    h *= up->r;
    w *= up->r;
  }
}
