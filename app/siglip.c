#include "siglip.h"
#include "ops.h"
#include "ops_vision.h"
#include "weights.h"
#include <math.h>
#include <string.h>

#define TOWER "vision_und_enc_model.vision_tower."

typedef struct {
  VkrtBuffer *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  /* qkv is stored as three buffers (rows [0:W] = q, [W:2W] = k, [2W:3W] = v of the checkpoint's
   * qkv Linear): attention takes dense q/k/v, and row-slice views of one buffer would need
   * offsets on the device's storage alignment, which small widths do not give. */
  VkrtBuffer *q_w, *k_w, *v_w, *q_b, *k_b, *v_b;
  VkrtBuffer *proj_w, *proj_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
} SigBlock;

struct JfSiglip {
  VkrtContext *ctx;
  JfSiglipConfig cfg;
  uint32_t hidden, grid, n_tokens, patch_k;
  uint64_t weight_bytes;
  VkrtBuffer *patch_w, *patch_b, *pos, *norm_w, *norm_b, *align_w, *align_b, *beg;
  float *beg_host;
  SigBlock *blocks;
  /* scratch, allocated once */
  float *pix_host;
  VkrtBuffer *pixels;  /* [3, S, S] */
  VkrtBuffer *cols;    /* [T, 3 p p] */
  VkrtBuffer *x;       /* residual stream [T, W] */
  VkrtBuffer *h;       /* LayerNorm output [T, W] */
  VkrtBuffer *q, *k, *v, *attn;  /* [T, W] */
  VkrtBuffer *attn_scores;        /* the attention op's scratch (CPU devices; NULL elsewhere) */
  VkrtBuffer *mlp;     /* [T, mlp_dim] */
  VkrtBuffer *feats;   /* final LayerNorm output [T, W] */
};

static void block_free(SigBlock *b)
{
  VkrtBuffer **bufs[] = { &b->ln1_w, &b->ln1_b, &b->ln2_w, &b->ln2_b, &b->q_w, &b->k_w, &b->v_w,
                          &b->q_b, &b->k_b, &b->v_b, &b->proj_w, &b->proj_b, &b->fc1_w, &b->fc1_b,
                          &b->fc2_w, &b->fc2_b };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
}

void siglip_free(JfSiglip *s)
{
  if (!s)
    return;
  if (s->blocks)
    for (int i = 0; i < s->cfg.layers; i++)
      block_free(&s->blocks[i]);
  g_free(s->blocks);
  VkrtBuffer **bufs[] = { &s->patch_w, &s->patch_b, &s->pos, &s->norm_w, &s->norm_b, &s->align_w,
                          &s->align_b, &s->beg, &s->pixels, &s->cols, &s->x, &s->h, &s->q, &s->k,
                          &s->v, &s->attn, &s->attn_scores, &s->mlp, &s->feats };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
  g_free(s->beg_host);
  g_free(s->pix_host);
  g_free(s);
}

/* Uploads one weight with its shape checked (shape of ndim entries); name is printf-style with
 * at most one int argument (the block index). */
static VkrtBuffer *up(JfSiglip *s, const StFile *f, GError **error, int ndim, const int64_t *shape,
                      const char *fmt, int block)
{
  char *name = g_strdup_printf(fmt, block);
  VkrtBuffer *b = weights_upload(s->ctx, f, name, ndim, shape, error);
  g_free(name);
  if (b)
    s->weight_bytes += vkrt_buffer_size(b);
  return b;
}

/* Uploads a tensor whose dim 0 is `parts` equal slices into one bf16 buffer per slice. */
static gboolean up_split(JfSiglip *s, const StFile *f, GError **error, int ndim, const int64_t *shape,
                         const char *fmt, int block, int parts, VkrtBuffer **out)
{
  char *name = g_strdup_printf(fmt, block);
  gboolean ok = FALSE;
  uint16_t *tmp = NULL;
  const StTensor *t = safetensors_require(f, name, ndim, shape, error);
  if (!t)
    goto done;
  const uint16_t *bf = t->data;
  if (t->dtype != ST_DTYPE_BF16) {
    tmp = g_try_malloc(t->n_elements * 2 + 2);
    if (!tmp) {
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of host memory converting %s",
                  safetensors_path(f), name);
      goto done;
    }
    safetensors_to_bf16(t, tmp);
    bf = tmp;
  }
  uint64_t part = t->n_elements / parts;
  for (int i = 0; i < parts; i++) {
    if (!(out[i] = vkrt_buffer_new(s->ctx, part ? part * 2 : 4, error)))
      goto done;
    s->weight_bytes += vkrt_buffer_size(out[i]);
    if (part && !vkrt_buffer_write(out[i], 0, bf + i * part, part * 2, error))
      goto done;
  }
  ok = TRUE;
done:
  g_free(tmp);
  g_free(name);
  return ok;
}

static gboolean check_geometry(const JfModelConfig *cfg, GError **error)
{
  const JfSiglipConfig *c = &cfg->siglip;
  const char *bad = NULL;
  if (c->patch <= 0)
    bad = "patch_size must be positive";
  else if (c->image_size < c->patch)
    bad = "image_size is smaller than patch_size";
  else if (c->width <= 0 || c->heads <= 0 || c->width % c->heads)
    bad = "width must be a positive multiple of heads";
  else if (!vkrt_attention_head_dim_ok((uint32_t)(c->width / c->heads)))
    bad = "width / heads (the head size) is not supported: the attention kernels take up to 1024";
  else if (c->layers < 0)
    bad = "layers (after select_layer) is negative";
  else if (c->mlp_dim <= 0)
    bad = "mlp_ratio gives an empty MLP";
  else if (cfg->llm.hidden <= 0)
    bad = "the LLM hidden size is not positive";
  else if ((int64_t)(c->image_size / c->patch) * (c->image_size / c->patch) * c->width > (1 << 28) ||
           (int64_t)c->image_size * c->image_size > (1 << 26))
    bad = "image_size is too large";
  if (bad)
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "config.json: vision_und_enc_config: %s", bad);
  return bad == NULL;
}

static VkrtBuffer *scratch(JfSiglip *s, uint64_t floats, GError **error)
{
  return vkrt_buffer_new(s->ctx, floats * 4, error);
}

JfSiglip *siglip_new(VkrtContext *ctx, const StFile *f, const JfModelConfig *cfg, GError **error)
{
  if (!check_geometry(cfg, error))
    return NULL;
  JfSiglip *s = g_new0(JfSiglip, 1);
  s->ctx = ctx;
  s->cfg = cfg->siglip;
  const JfSiglipConfig *c = &s->cfg;
  const int64_t W = c->width, M = c->mlp_dim, P = c->patch, H = cfg->llm.hidden;
  s->hidden = (uint32_t)H;
  s->grid = (uint32_t)(c->image_size / c->patch);
  s->n_tokens = s->grid * s->grid;
  s->patch_k = (uint32_t)(3 * P * P);
  const int64_t T = s->n_tokens;

  const int64_t sh_patch[4] = { W, 3, P, P }, sh_w[1] = { W }, sh_pos[3] = { 1, T, W };
  const int64_t sh_align[2] = { H, W }, sh_h[1] = { H }, sh_beg[2] = { 1, H };
  if (!(s->patch_w = up(s, f, error, 4, sh_patch, TOWER "patch_embed.proj.weight", 0)) ||
      !(s->patch_b = up(s, f, error, 1, sh_w, TOWER "patch_embed.proj.bias", 0)) ||
      !(s->pos = up(s, f, error, 3, sh_pos, TOWER "pos_embed", 0)) ||
      !(s->norm_w = up(s, f, error, 1, sh_w, TOWER "norm.weight", 0)) ||
      !(s->norm_b = up(s, f, error, 1, sh_w, TOWER "norm.bias", 0)) ||
      !(s->align_w = up(s, f, error, 2, sh_align, "vision_und_enc_aligner.weight", 0)) ||
      !(s->align_b = up(s, f, error, 1, sh_h, "vision_und_enc_aligner.bias", 0)))
    goto fail;

  /* beg_of_und_embed: device bf16 plus the same values widened on the host */
  const StTensor *beg = safetensors_require(f, "beg_of_und_embed", 2, sh_beg, error);
  if (!beg || !(s->beg = up(s, f, error, 2, sh_beg, "beg_of_und_embed", 0)))
    goto fail;
  {
    uint16_t *tmp = g_new(uint16_t, H);
    safetensors_to_bf16(beg, tmp);
    s->beg_host = g_new(float, H);
    for (int64_t i = 0; i < H; i++) {
      uint32_t u = (uint32_t)tmp[i] << 16;
      memcpy(&s->beg_host[i], &u, 4);
    }
    g_free(tmp);
  }

  /* only the blocks that select_layer keeps are read; later blocks and attn_pool stay on disk */
  const int64_t sh_qkv_w[2] = { 3 * W, W }, sh_qkv_b[1] = { 3 * W }, sh_ww[2] = { W, W };
  const int64_t sh_fc1[2] = { M, W }, sh_m[1] = { M }, sh_fc2[2] = { W, M };
  s->blocks = g_new0(SigBlock, c->layers);
  for (int i = 0; i < c->layers; i++) {
    SigBlock *b = &s->blocks[i];
    VkrtBuffer *qkv_w[3] = { 0 }, *qkv_b[3] = { 0 };
    gboolean ok =
        (b->ln1_w = up(s, f, error, 1, sh_w, TOWER "blocks.%d.norm1.weight", i)) &&
        (b->ln1_b = up(s, f, error, 1, sh_w, TOWER "blocks.%d.norm1.bias", i)) &&
        up_split(s, f, error, 2, sh_qkv_w, TOWER "blocks.%d.attn.qkv.weight", i, 3, qkv_w) &&
        up_split(s, f, error, 1, sh_qkv_b, TOWER "blocks.%d.attn.qkv.bias", i, 3, qkv_b) &&
        (b->proj_w = up(s, f, error, 2, sh_ww, TOWER "blocks.%d.attn.proj.weight", i)) &&
        (b->proj_b = up(s, f, error, 1, sh_w, TOWER "blocks.%d.attn.proj.bias", i)) &&
        (b->ln2_w = up(s, f, error, 1, sh_w, TOWER "blocks.%d.norm2.weight", i)) &&
        (b->ln2_b = up(s, f, error, 1, sh_w, TOWER "blocks.%d.norm2.bias", i)) &&
        (b->fc1_w = up(s, f, error, 2, sh_fc1, TOWER "blocks.%d.mlp.fc1.weight", i)) &&
        (b->fc1_b = up(s, f, error, 1, sh_m, TOWER "blocks.%d.mlp.fc1.bias", i)) &&
        (b->fc2_w = up(s, f, error, 2, sh_fc2, TOWER "blocks.%d.mlp.fc2.weight", i)) &&
        (b->fc2_b = up(s, f, error, 1, sh_w, TOWER "blocks.%d.mlp.fc2.bias", i));
    /* the split buffers are owned by the block from here on, also on failure */
    b->q_w = qkv_w[0]; b->k_w = qkv_w[1]; b->v_w = qkv_w[2];
    b->q_b = qkv_b[0]; b->k_b = qkv_b[1]; b->v_b = qkv_b[2];
    if (!ok)
      goto fail;
  }

  const int64_t S = c->image_size;
  s->pix_host = g_try_new(float, 3 * S * S);
  if (!s->pix_host) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "siglip: out of host memory");
    goto fail;
  }
  if (!(s->pixels = scratch(s, 3 * S * S, error)) || !(s->cols = scratch(s, T * s->patch_k, error)) ||
      !(s->x = scratch(s, T * W, error)) || !(s->h = scratch(s, T * W, error)) ||
      !(s->q = scratch(s, T * W, error)) || !(s->k = scratch(s, T * W, error)) ||
      !(s->v = scratch(s, T * W, error)) || !(s->attn = scratch(s, T * W, error)) ||
      !(s->mlp = scratch(s, T * M, error)) || !(s->feats = scratch(s, T * W, error)))
    goto fail;
  /* all heads' T x T scores (padded rows, a sum per row) where the tower's attention takes the
   * GEMM form (CPU devices), so that it is one chunk; the other forms never use it */
  uint32_t head_dim = (uint32_t)(s->cfg.width / s->cfg.heads);
  uint64_t want = strcmp(vkrt_ops_attention_path(ctx, (uint32_t)T, (uint32_t)s->cfg.heads, head_dim), "gemm") == 0
                    ? vkrt_ops_attention_scratch_bytes(ctx) : 0;
  uint64_t all = T * vkrt_ops_attention_scratch_row_bytes((uint64_t)s->cfg.heads, (uint32_t)T);
  if (want && !(s->attn_scores = vkrt_buffer_new(ctx, MIN(want, all), error)))
    goto fail;
  return s;

fail:
  siglip_free(s);
  return NULL;
}

uint32_t siglip_n_tokens(const JfSiglip *s) { return s->n_tokens; }
uint32_t siglip_image_size(const JfSiglip *s) { return (uint32_t)s->cfg.image_size; }
uint32_t siglip_width(const JfSiglip *s) { return (uint32_t)s->cfg.width; }
uint32_t siglip_hidden(const JfSiglip *s) { return s->hidden; }
uint64_t siglip_weight_bytes(const JfSiglip *s) { return s->weight_bytes; }
VkrtTensor siglip_features(const JfSiglip *s) { return vkrt_tensor(s->feats); }
VkrtTensor siglip_beg_embed(const JfSiglip *s) { return vkrt_tensor(s->beg); }
const float *siglip_beg_embed_host(const JfSiglip *s) { return s->beg_host; }

void siglip_record_beg_embed(JfSiglip *s, VkrtSeq *seq, VkrtTensor dst)
{
  vkrt_op_add_bf16(seq, dst, vkrt_tensor_none(), vkrt_tensor(s->beg), s->hidden);
}

gboolean siglip_encode(JfSiglip *s, VkrtSeq *seq, const float *pixels_chw, VkrtTensor out_embeds,
                       GError **error)
{
  const JfSiglipConfig *c = &s->cfg;
  const uint32_t T = s->n_tokens, W = (uint32_t)c->width, M = (uint32_t)c->mlp_dim;
  const uint32_t S = (uint32_t)c->image_size, P = (uint32_t)c->patch;
  const uint32_t heads = (uint32_t)c->heads, hd = W / heads;
  const uint64_t n_pix = 3ull * S * S;

  if (!pixels_chw) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "siglip: no pixels");
    return FALSE;
  }
  if (!out_embeds.buf || out_embeds.size < (uint64_t)T * s->hidden * 4) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED,
                "siglip: the output tensor needs %u x %u floats", T, s->hidden);
    return FALSE;
  }
  if (c->pixel_norm) {
    /* torchvision Normalize in fp32, applied before the patch embedding */
    for (uint32_t ch = 0; ch < 3; ch++)
      for (uint64_t i = 0; i < (uint64_t)S * S; i++)
        s->pix_host[ch * S * S + i] = (pixels_chw[ch * S * S + i] - c->pixel_mean[ch]) / c->pixel_std[ch];
  } else {
    memcpy(s->pix_host, pixels_chw, n_pix * 4);
  }
  if (!vkrt_buffer_write(s->pixels, 0, s->pix_host, n_pix * 4, error))
    return FALSE;

  VkrtTensor x = vkrt_tensor(s->x), h = vkrt_tensor(s->h), q = vkrt_tensor(s->q);
  VkrtTensor k = vkrt_tensor(s->k), v = vkrt_tensor(s->v), attn = vkrt_tensor(s->attn);
  VkrtTensor mlp = vkrt_tensor(s->mlp), feats = vkrt_tensor(s->feats);
#define WT(b) vkrt_tensor(b)

  vkrt_op_patch_embed(seq, x, vkrt_tensor(s->pixels), vkrt_tensor(s->cols), WT(s->patch_w),
                      WT(s->patch_b), 3, S, S, P, W);
  vkrt_op_add_bf16(seq, x, x, WT(s->pos), T * W);

  const VkrtAttnParams ap = {
    .n_batch = 1, .n_q = T, .n_heads = heads, .head_dim = hd, .q_start = 0, .n_kv = T,
    .kv_capacity = T, .causal = false, .scale = 1.0f / sqrtf((float)hd),
    .scratch = s->attn_scores ? vkrt_tensor(s->attn_scores) : vkrt_tensor_none(),
  };
  for (int i = 0; i < c->layers; i++) {
    const SigBlock *b = &s->blocks[i];
    vkrt_op_layernorm(seq, h, x, WT(b->ln1_w), WT(b->ln1_b), T, W, c->ln_eps);
    vkrt_op_matmul(seq, q, h, WT(b->q_w), WT(b->q_b), T, W, W, 0);
    vkrt_op_matmul(seq, k, h, WT(b->k_w), WT(b->k_b), T, W, W, 0);
    vkrt_op_matmul(seq, v, h, WT(b->v_w), WT(b->v_b), T, W, W, 0);
    vkrt_op_attention(seq, attn, q, k, v, vkrt_tensor_none(), &ap);
    vkrt_op_matmul(seq, x, attn, WT(b->proj_w), WT(b->proj_b), T, W, W, VKRT_MM_ACCUMULATE);
    vkrt_op_layernorm(seq, h, x, WT(b->ln2_w), WT(b->ln2_b), T, W, c->ln_eps);
    vkrt_op_matmul(seq, mlp, h, WT(b->fc1_w), WT(b->fc1_b), T, M, W, VKRT_MM_GELU);
    vkrt_op_matmul(seq, x, mlp, WT(b->fc2_w), WT(b->fc2_b), T, W, M, VKRT_MM_ACCUMULATE);
  }
  vkrt_op_layernorm(seq, feats, x, WT(s->norm_w), WT(s->norm_b), T, W, c->ln_eps);
  vkrt_op_matmul(seq, out_embeds, feats, WT(s->align_w), WT(s->align_b), T, s->hidden, W, 0);
#undef WT
  return TRUE;
}
