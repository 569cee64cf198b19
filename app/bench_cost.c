#include "bench_cost.h"
#include <stdio.h>
#include <string.h>

#define BF16 2.0   /* bytes per weight on the device */

/* Multiply-adds per token of one decoder layer's linears. */
static double llm_layer_macs(const JfLlmConfig *c)
{
  double H = c->hidden, I = c->intermediate;
  double QD = (double)c->n_heads * c->head_dim, KVD = (double)c->n_kv_heads * c->head_dim;
  return H * QD + 2.0 * H * KVD + QD * H + 3.0 * H * I;
}

static double llm_layer_bytes(const JfLlmConfig *c)
{
  return (llm_layer_macs(c) + 2.0 * c->hidden) * BF16;
}

/* n_seq sequences of rows new tokens each at cache positions start..start+rows-1 (causal), plus
 * lm_head over lm_rows rows. Weights once for the whole pass; each sequence's keys once per layer. */
static BenchCost llm_pass(const JfLlmConfig *c, JfKvFormat kv, double n_seq, double rows, double start,
                          double lm_rows)
{
  const double kv_bytes = kv == JF_KV_F16 ? 2.0 : 4.0;  /* per cached K or V value */
  double L = c->n_layers, QD = (double)c->n_heads * c->head_dim, KVD = (double)c->n_kv_heads * c->head_dim;
  /* sum over queries i of the keys it sees: start + i + 1 */
  double keys = rows * start + rows * (rows + 1) / 2.0;
  BenchCost k;
  k.flops = 2.0 * n_seq * rows * L * llm_layer_macs(c) + 4.0 * QD * L * n_seq * keys +
            2.0 * lm_rows * (double)c->vocab * c->hidden;
  k.bytes = L * llm_layer_bytes(c) + c->hidden * BF16 + (lm_rows > 0 ? (double)c->vocab * c->hidden * BF16 : 0) +
            n_seq * L * 2.0 * KVD * kv_bytes * (start + rows);
  return k;
}

BenchCost bench_cost_prefill(const JfModelConfig *cfg, JfKvFormat kv, uint32_t n_tokens)
{
  BenchCost k = llm_pass(&cfg->llm, kv, 1, n_tokens, 0, 1);
  k.bytes += (double)n_tokens * cfg->llm.hidden * BF16;  /* embedding rows */
  return k;
}

BenchCost bench_cost_decode(const JfModelConfig *cfg, JfKvFormat kv, uint32_t start, uint32_t n_new)
{
  BenchCost sum = { 0, 0 };
  for (uint32_t i = 0; i < n_new; i++) {
    BenchCost k = llm_pass(&cfg->llm, kv, 1, 1, (double)start + i, 1);
    sum.flops += k.flops;
    sum.bytes += k.bytes + cfg->llm.hidden * BF16;
  }
  return sum;
}

BenchCost bench_cost_siglip(const JfModelConfig *cfg)
{
  const JfSiglipConfig *s = &cfg->siglip;
  double side = (double)(s->image_size / s->patch), T = side * side, W = s->width, M = s->mlp_dim;
  double p2 = (double)s->patch * s->patch, D = cfg->llm.hidden, B = s->layers;
  double block_macs = 3 * W * W + W * W + 2 * W * M;
  BenchCost k;
  k.flops = 2 * T * W * 3 * p2 + B * (2 * T * block_macs + 4 * T * T * W) + 2 * T * D * W;
  double params = 3 * p2 * W + W + T * W + B * (block_macs + 3 * W + W + M + W + 4 * W) + 2 * W + D * W + D;
  k.bytes = params * BF16;
  return k;
}

static gboolean has_prefix(const char *s, const char *p) { return strncmp(s, p, strlen(p)) == 0; }

/* Tokens out_convs.k of the decoder runs on, relative to the encoder's grid: the product of the
 * r * r of the out_convs before it (r from each unpatch_conv's outputs: cout * r * r). */
static double unpatch_scale(const JfModelConfig *cfg, const StFile *st, int k)
{
  double scale = 1;
  for (int j = 0; j < k; j++) {
    char name[96];
    g_snprintf(name, sizeof name, "vision_gen_dec_model.out_convs.%d.unpatch_conv.weight", j);
    const StTensor *t = safetensors_find(st, name);
    int cout = j + 1 == cfg->gen_dec.upsamples ? cfg->gen_dec.out_channels : cfg->gen_dec.channels;
    if (t && t->ndim >= 1 && cout > 0)
      scale *= (double)t->shape[0] / cout;
  }
  return scale;
}

gboolean bench_cost_euler_step(const JfModelConfig *cfg, JfKvFormat kv, const StFile *st, uint32_t prefix, uint32_t batch,
                               BenchCost *out, GError **error)
{
  const double n = batch, T = cfg->proc.num_image_tokens;
  double macs = 0, params = 0;
  gboolean have_enc = FALSE, have_dec = FALSE;
  for (guint i = 0; i < safetensors_n_tensors(st); i++) {
    const StTensor *t = safetensors_tensor(st, i);
    gboolean enc = has_prefix(t->name, "vision_gen_enc_model.") || has_prefix(t->name, "vision_gen_enc_aligner.");
    gboolean dec = has_prefix(t->name, "vision_gen_dec_model.") || has_prefix(t->name, "vision_gen_dec_aligner");
    if (!enc && !dec)
      continue;
    have_enc |= enc;
    have_dec |= dec;
    params += (double)t->n_elements;
    /* weights of Linear / conv layers: every multiply-add of one output pixel or row touches each
     * weight once (depthwise and 1x1 convs included); GRN's [1,1,1,C] gamma/beta are not matmuls */
    if (t->ndim < 2 || strstr(t->name, "channelwise_norm"))
      continue;
    double rows;
    if (strstr(t->name, "time_embed.") || strstr(t->name, "cond_embeds_mapper"))
      rows = n;                       /* per image: FiLM and t_emb are shared by both CFG rows */
    else
      rows = enc ? n * T : 2 * n * T; /* encoder once per image, decoder per CFG row */
    int k;
    if (sscanf(t->name, "vision_gen_dec_model.out_convs.%d.", &k) == 1 && k > 0)
      rows *= unpatch_scale(cfg, st, k);  /* a later out_conv runs on the upscaled grid */
    macs += rows * (double)t->n_elements;
  }
  if (!have_enc || !have_dec) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: no generation encoder/decoder tensors",
                safetensors_path(st));
    return FALSE;
  }
  BenchCost llm = llm_pass(&cfg->llm, kv, 2 * n, T + 1, prefix, 0);
  out->flops = 2 * macs + llm.flops;
  out->bytes = params * BF16 + llm.bytes;
  return TRUE;
}

gboolean bench_cost_vae_decode(const StFile *vae_st, uint32_t lat_h, uint32_t lat_w, BenchCost *out,
                               GError **error)
{
  /* which up blocks end in an upsampler: their successors run at twice the resolution */
  guint up_mask = 0;
  int n_up_blocks = 0;
  for (guint i = 0; i < safetensors_n_tensors(vae_st); i++) {
    const StTensor *t = safetensors_tensor(vae_st, i);
    int b;
    if (sscanf(t->name, "decoder.up_blocks.%d.", &b) == 1 && b >= 0 && b < 31) {
      n_up_blocks = MAX(n_up_blocks, b + 1);
      if (strstr(t->name, ".upsamplers."))
        up_mask |= 1u << b;
    }
  }
  if (n_up_blocks == 0) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: no decoder.up_blocks tensors", safetensors_path(vae_st));
    return FALSE;
  }
  const double L = (double)lat_h * lat_w;
  double macs = 0, params = 0, attn_c = 0;
  for (guint i = 0; i < safetensors_n_tensors(vae_st); i++) {
    const StTensor *t = safetensors_tensor(vae_st, i);
    if (!has_prefix(t->name, "decoder.") && !has_prefix(t->name, "post_quant_conv."))
      continue;
    params += (double)t->n_elements;
    if (t->ndim < 2)
      continue;
    double scale = 1;  /* linear upscale of the resolution the layer runs at */
    int b;
    if (sscanf(t->name, "decoder.up_blocks.%d.", &b) == 1) {
      for (int j = 0; j < b; j++)
        if (up_mask & (1u << j)) scale *= 2;
      if (strstr(t->name, ".upsamplers."))
        scale *= 2;
    } else if (has_prefix(t->name, "decoder.conv_out.")) {
      for (int j = 0; j < n_up_blocks; j++)
        if (up_mask & (1u << j)) scale *= 2;
    }
    macs += L * scale * scale * (double)t->n_elements;
    if (has_prefix(t->name, "decoder.mid_block.attentions.0.") &&
        (g_str_has_suffix(t->name, ".to_q.weight") || g_str_has_suffix(t->name, ".query.weight")))
      attn_c = (double)t->shape[0];
  }
  /* the mid-block self-attention over all L latent pixels: q.k and p.v */
  out->flops = 2 * macs + 4 * L * L * attn_c;
  out->bytes = params * BF16;
  return TRUE;
}
