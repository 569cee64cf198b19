#include "llm.h"
#include "ops.h"
#include "weights.h"
#include "quant.h"
#include <math.h>
#include <string.h>

/* Rows per forward call: bounds the scratch buffers (the MLP scratch is rows x intermediate fp32)
 * and keeps each submit short enough for driver watchdogs. Long prompts are chunked by callers. */
#define LLM_MAX_ROWS 1280

/* A Linear weight [out, in]: bf16, or Q8_0 (vk/quant.h) when loaded with JF_WEIGHTS_Q8_0; its
 * bias (bf16, [out]) when the config has one (attention_bias: q/k/v/o). */
typedef struct {
  VkrtBuffer *buf, *bias;
  gboolean q8;
} LlmLinear;

typedef struct {
  LlmLinear q, k, v, o, gate, up, down;
  VkrtBuffer *in_norm, *post_norm;
} LlmLayer;

struct JfLlm {
  VkrtContext *ctx;
  JfLlmConfig cfg;
  JfWeightFormat wf;
  VkrtBuffer *embed, *norm;
  LlmLinear lm_head;
  LlmLayer *layers;
  uint64_t weight_bytes;
  /* scratch, LLM_MAX_ROWS rows each */
  VkrtBuffer *h, *q, *attn, *gate, *up;
  VkrtBuffer *attn_scores;  /* the attention op's scratch (CPU devices: GEMM form; GPUs: split-K decode) */
  /* fp32 V rows on their way into an fp16 cache, when gate (which holds them otherwise) is
   * narrower than kv_dim; K rows use attn, never narrower (n_kv_heads divides n_heads) */
  VkrtBuffer *v_stage;
};

struct JfKvCache {
  JfLlm *llm;
  uint32_t n_batch, capacity;
  JfKvFormat format;
  VkrtBuffer **k, **v;  /* per layer [n_batch, capacity, kv_dim] of the format's values */
};

static void layer_free(LlmLayer *l)
{
  VkrtBuffer **bufs[] = { &l->q.buf, &l->k.buf, &l->v.buf, &l->o.buf, &l->gate.buf, &l->up.buf, &l->down.buf,
                          &l->q.bias, &l->k.bias, &l->v.bias, &l->o.bias, &l->in_norm, &l->post_norm };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
}

void llm_free(JfLlm *llm)
{
  if (!llm)
    return;
  if (llm->layers)
    for (int i = 0; i < llm->cfg.n_layers; i++)
      layer_free(&llm->layers[i]);
  g_free(llm->layers);
  VkrtBuffer **bufs[] = { &llm->embed, &llm->norm, &llm->lm_head.buf, &llm->h, &llm->q, &llm->attn, &llm->gate, &llm->up,
                          &llm->attn_scores, &llm->v_stage };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
  g_free(llm);
}

const JfLlmConfig *llm_config(const JfLlm *llm) { return &llm->cfg; }
uint64_t llm_weight_bytes(const JfLlm *llm) { return llm->weight_bytes; }
JfWeightFormat llm_weight_format(const JfLlm *llm) { return llm->wf; }

const char *llm_weight_format_name(JfWeightFormat wf)
{
  return wf == JF_WEIGHTS_Q8_0 ? "q8_0" : "bf16";
}

gboolean llm_weight_format_parse(const char *s, JfWeightFormat *out, GError **error)
{
  if (s && g_ascii_strcasecmp(s, "bf16") == 0) {
    *out = JF_WEIGHTS_BF16;
    return TRUE;
  }
  if (s && (g_ascii_strcasecmp(s, "q8_0") == 0 || g_ascii_strcasecmp(s, "q8") == 0)) {
    *out = JF_WEIGHTS_Q8_0;
    return TRUE;
  }
  g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--weights '%s': use bf16 or q8_0", s ? s : "");
  return FALSE;
}

/* The Linear weights that Q8_0 applies to: decoder projections and lm_head, input size % 32 == 0. */
static gboolean is_quantizable(const char *name, int ndim, const int64_t *shape)
{
  gboolean linear = strcmp(name, "language_model.lm_head.weight") == 0 ||
                    (g_str_has_prefix(name, "language_model.model.layers.") && g_str_has_suffix(name, "_proj.weight"));
  return linear && ndim == 2 && shape[0] > 0 && shape[0] <= UINT32_MAX && shape[1] > 0 &&
         shape[1] <= UINT32_MAX && shape[1] % VKRT_Q8_BLOCK == 0;
}

uint64_t llm_tensor_device_bytes(const StTensor *t, JfWeightFormat wf)
{
  if (!g_str_has_prefix(t->name, "language_model."))
    return 0;
  if (wf == JF_WEIGHTS_Q8_0 && is_quantizable(t->name, t->ndim, t->shape))
    return vkrt_quant_q8_0_bytes((uint32_t)t->shape[0], (uint32_t)t->shape[1]);
  return (t->n_elements * 2 + 3) & ~(uint64_t)3;
}
uint32_t llm_max_rows(const JfLlm *llm) { (void)llm; return LLM_MAX_ROWS; }

static VkrtBuffer *up2(JfLlm *llm, const StFile *f, GError **error, int64_t d0, int64_t d1, const char *fmt, int layer)
{
  int64_t shape[2] = { d0, d1 };
  char *name = layer >= 0 ? g_strdup_printf(fmt, layer) : g_strdup(fmt);
  VkrtBuffer *b = weights_upload(llm->ctx, f, name, d1 ? 2 : 1, shape, error);
  g_free(name);
  if (b)
    llm->weight_bytes += vkrt_buffer_size(b);
  return b;
}

/* A Linear weight [d0, d1]: quantized when the format asks for it and the shape allows it. */
static gboolean up_linear(JfLlm *llm, const StFile *f, GError **error, LlmLinear *out, int64_t d0, int64_t d1,
                          const char *fmt, int layer)
{
  int64_t shape[2] = { d0, d1 };
  char *name = layer >= 0 ? g_strdup_printf(fmt, layer) : g_strdup(fmt);
  out->q8 = llm->wf == JF_WEIGHTS_Q8_0 && is_quantizable(name, 2, shape);
  out->buf = out->q8 ? weights_upload_q8_0(llm->ctx, f, name, d0, d1, error)
                     : weights_upload(llm->ctx, f, name, 2, shape, error);
  g_free(name);
  if (out->buf)
    llm->weight_bytes += vkrt_buffer_size(out->buf);
  return out->buf != NULL;
}


/* y = x . w^T (+ bias) with whichever kernel the weight's format needs. */
static void linear(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, const LlmLinear *w, uint32_t M, uint32_t N,
                   uint32_t K, uint32_t flags)
{
  VkrtTensor b = w->bias ? vkrt_tensor(w->bias) : vkrt_tensor_none();
  if (w->q8)
    vkrt_op_matmul_q8(seq, y, x, vkrt_tensor(w->buf), b, M, N, K, flags);
  else
    vkrt_op_matmul(seq, y, x, vkrt_tensor(w->buf), b, M, N, K, flags);
}

JfLlm *llm_new(VkrtContext *ctx, const StFile *f, const JfLlmConfig *cfg, JfWeightFormat wf, GError **error)
{
  if (!vkrt_attention_head_dim_ok((uint32_t)cfg->head_dim)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                "config.json: language_config: head_dim %d is not supported (the attention kernels take up to %u)",
                cfg->head_dim, VKRT_ATTN_MAX_HEAD_DIM);
    return NULL;
  }
  JfLlm *llm = g_new0(JfLlm, 1);
  llm->ctx = ctx;
  llm->cfg = *cfg;
  llm->wf = wf;
  const int64_t H = cfg->hidden, I = cfg->intermediate, V = cfg->vocab;
  const int64_t QD = (int64_t)cfg->n_heads * cfg->head_dim;
  const int64_t KVD = (int64_t)cfg->n_kv_heads * cfg->head_dim;

  if (!(llm->embed = up2(llm, f, error, V, H, "language_model.model.embed_tokens.weight", -1)) ||
      !(llm->norm = up2(llm, f, error, H, 0, "language_model.model.norm.weight", -1)) ||
      !up_linear(llm, f, error, &llm->lm_head, V, H, "language_model.lm_head.weight", -1))
    goto fail;

  llm->layers = g_new0(LlmLayer, cfg->n_layers);
  for (int i = 0; i < cfg->n_layers; i++) {
    LlmLayer *l = &llm->layers[i];
    if (!up_linear(llm, f, error, &l->q, QD, H, "language_model.model.layers.%d.self_attn.q_proj.weight", i) ||
        !up_linear(llm, f, error, &l->k, KVD, H, "language_model.model.layers.%d.self_attn.k_proj.weight", i) ||
        !up_linear(llm, f, error, &l->v, KVD, H, "language_model.model.layers.%d.self_attn.v_proj.weight", i) ||
        !up_linear(llm, f, error, &l->o, H, QD, "language_model.model.layers.%d.self_attn.o_proj.weight", i) ||
        !up_linear(llm, f, error, &l->gate, I, H, "language_model.model.layers.%d.mlp.gate_proj.weight", i) ||
        !up_linear(llm, f, error, &l->up, I, H, "language_model.model.layers.%d.mlp.up_proj.weight", i) ||
        !up_linear(llm, f, error, &l->down, H, I, "language_model.model.layers.%d.mlp.down_proj.weight", i) ||
        !(l->in_norm = up2(llm, f, error, H, 0, "language_model.model.layers.%d.input_layernorm.weight", i)) ||
        !(l->post_norm = up2(llm, f, error, H, 0, "language_model.model.layers.%d.post_attention_layernorm.weight", i)))
      goto fail;
    if (cfg->attention_bias &&
        (!(l->q.bias = up2(llm, f, error, QD, 0, "language_model.model.layers.%d.self_attn.q_proj.bias", i)) ||
         !(l->k.bias = up2(llm, f, error, KVD, 0, "language_model.model.layers.%d.self_attn.k_proj.bias", i)) ||
         !(l->v.bias = up2(llm, f, error, KVD, 0, "language_model.model.layers.%d.self_attn.v_proj.bias", i)) ||
         !(l->o.bias = up2(llm, f, error, H, 0, "language_model.model.layers.%d.self_attn.o_proj.bias", i))))
      goto fail;
  }

  const uint64_t R = LLM_MAX_ROWS;
  uint64_t wide = (uint64_t)MAX(MAX(H, QD), KVD);
  if (!(llm->h = vkrt_buffer_new(ctx, R * wide * 4, error)) ||
      !(llm->q = vkrt_buffer_new(ctx, R * QD * 4, error)) ||
      !(llm->attn = vkrt_buffer_new(ctx, R * QD * 4, error)) ||
      !(llm->gate = vkrt_buffer_new(ctx, R * I * 4, error)) ||
      !(llm->up = vkrt_buffer_new(ctx, R * I * 4, error)))
    goto fail;
  uint64_t scores = vkrt_ops_attention_scratch_bytes(ctx);
  if (scores && !(llm->attn_scores = vkrt_buffer_new(ctx, scores, error)))
    goto fail;
  if (I < KVD && vkrt_attention_kv_f16_ok((uint32_t)cfg->head_dim) &&
      !(llm->v_stage = vkrt_buffer_new(ctx, R * KVD * 4, error)))
    goto fail;
  return llm;

fail:
  llm_free(llm);
  return NULL;
}

static volatile gint force_kv = -2;  /* -2: not read from the environment yet */

void llm_force_kv_format(int mode)
{
  g_atomic_int_set(&force_kv, mode < 0 ? -1 : mode > 0);
}

const char *llm_kv_format_name(JfKvFormat f)
{
  return f == JF_KV_F16 ? "f16" : "f32";
}

JfKvFormat llm_kv_format_for(VkrtDeviceType type, uint32_t head_dim)
{
  gint m = g_atomic_int_get(&force_kv);
  if (m == -2) {
    const char *e = g_getenv("JANUSFLOW_KV");
    m = e && g_ascii_strcasecmp(e, "f16") == 0 ? 1 : e && g_ascii_strcasecmp(e, "f32") == 0 ? 0 : -1;
    g_atomic_int_set(&force_kv, m);
  }
  if (!vkrt_attention_kv_f16_ok(head_dim))
    return JF_KV_F32;
  if (m >= 0)
    return m ? JF_KV_F16 : JF_KV_F32;
  return type == VKRT_DEVICE_CPU ? JF_KV_F32 : JF_KV_F16;
}

/* Bytes of one K (or V) row of a cache. */
static uint64_t kv_row_bytes(uint32_t kv_dim, JfKvFormat f)
{
  return (uint64_t)kv_dim * (f == JF_KV_F16 ? 2 : 4);
}

uint64_t llm_kv_bytes_for(uint32_t n_layers, uint32_t kv_dim, JfKvFormat f, uint32_t n_batch, uint32_t capacity)
{
  return 2ull * n_layers * n_batch * capacity * kv_row_bytes(kv_dim, f);
}

JfKvCache *llm_kv_new(JfLlm *llm, uint32_t n_batch, uint32_t capacity, GError **error)
{
  JfKvCache *kv = g_new0(JfKvCache, 1);
  kv->llm = llm;
  kv->n_batch = n_batch;
  kv->capacity = capacity;
  kv->format = llm_kv_format_for(vkrt_context_info(llm->ctx)->type, (uint32_t)llm->cfg.head_dim);
  int L = llm->cfg.n_layers;
  kv->k = g_new0(VkrtBuffer *, L);
  kv->v = g_new0(VkrtBuffer *, L);
  uint64_t bytes = (uint64_t)n_batch * capacity * kv_row_bytes(llm->cfg.n_kv_heads * llm->cfg.head_dim, kv->format);
  for (int i = 0; i < L; i++) {
    if (!(kv->k[i] = vkrt_buffer_new(llm->ctx, bytes, error)) ||
        !(kv->v[i] = vkrt_buffer_new(llm->ctx, bytes, error))) {
      g_prefix_error(error, "KV cache for %u x %u tokens: ", n_batch, capacity);
      llm_kv_free(kv);
      return NULL;
    }
  }
  return kv;
}

void llm_kv_free(JfKvCache *kv)
{
  if (!kv)
    return;
  for (int i = 0; i < kv->llm->cfg.n_layers; i++) {
    if (kv->k[i]) vkrt_buffer_free(kv->k[i]);
    if (kv->v[i]) vkrt_buffer_free(kv->v[i]);
  }
  g_free(kv->k);
  g_free(kv->v);
  g_free(kv);
}

uint32_t llm_kv_capacity(const JfKvCache *kv) { return kv->capacity; }
uint32_t llm_kv_batch(const JfKvCache *kv) { return kv->n_batch; }
JfKvFormat llm_kv_format(const JfKvCache *kv) { return kv->format; }

uint64_t llm_kv_bytes(const JfKvCache *kv)
{
  const JfLlmConfig *c = &kv->llm->cfg;
  return llm_kv_bytes_for((uint32_t)c->n_layers, (uint32_t)(c->n_kv_heads * c->head_dim), kv->format, kv->n_batch,
                          kv->capacity);
}

void llm_record_embed(JfLlm *llm, VkrtSeq *seq, VkrtTensor ids, uint32_t n, VkrtTensor out)
{
  vkrt_op_embed(seq, out, vkrt_tensor(llm->embed), ids, n, llm->cfg.hidden, llm->cfg.vocab);
}

int llm_n_layers(const JfLlm *llm) { return llm->cfg.n_layers; }

void llm_record_final_norm(JfLlm *llm, VkrtSeq *seq, VkrtTensor x, uint32_t rows, VkrtTensor out)
{
  vkrt_op_rmsnorm(seq, out, x, vkrt_tensor(llm->norm), rows, llm->cfg.hidden, llm->cfg.rms_eps);
}

gboolean llm_record_forward(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor x, VkrtTensor pos,
                            VkrtTensor mask, uint32_t n_tokens, uint32_t start, VkrtTensor out,
                            GError **error)
{
  if (!llm_record_layers(llm, seq, kv, x, pos, mask, n_tokens, start, 0, llm->cfg.n_layers, error))
    return FALSE;
  llm_record_final_norm(llm, seq, x, kv->n_batch * n_tokens, out);
  return TRUE;
}

gboolean llm_record_layers(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor x, VkrtTensor pos,
                           VkrtTensor mask, uint32_t n_tokens, uint32_t start, int l0, int l1,
                           GError **error)
{
  const JfLlmConfig *c = &llm->cfg;
  const uint32_t B = kv->n_batch, T = n_tokens, rows = B * T;
  const uint32_t H = c->hidden, I = c->intermediate;
  const uint32_t QD = c->n_heads * c->head_dim, KVD = c->n_kv_heads * c->head_dim;

  if (rows == 0 || rows > LLM_MAX_ROWS) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED,
                "LLM forward of %u rows: must be 1..%u (split the prompt)", rows, LLM_MAX_ROWS);
    return FALSE;
  }
  if ((uint64_t)start + T > kv->capacity) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED,
                "context full: %u + %u tokens exceed the KV cache of %u", start, T, kv->capacity);
    return FALSE;
  }
  VkrtTensor h = vkrt_tensor_sub(vkrt_tensor(llm->h), 0, (uint64_t)rows * H * 4);
  VkrtTensor q = vkrt_tensor_sub(vkrt_tensor(llm->q), 0, (uint64_t)rows * QD * 4);
  VkrtTensor attn = vkrt_tensor_sub(vkrt_tensor(llm->attn), 0, (uint64_t)rows * QD * 4);
  VkrtTensor gate = vkrt_tensor_sub(vkrt_tensor(llm->gate), 0, (uint64_t)rows * I * 4);
  VkrtTensor up = vkrt_tensor_sub(vkrt_tensor(llm->up), 0, (uint64_t)rows * I * 4);
  const bool f16 = kv->format == JF_KV_F16;
  const uint64_t kv_row = kv_row_bytes(KVD, kv->format);
  /* fp16: K and V rows of every sequence in fp32 first (rope needs K in fp32), then rounded into
   * the cache. attn is free until attention writes it; gate until the MLP. */
  VkrtTensor k32 = vkrt_tensor_sub(vkrt_tensor(llm->attn), 0, (uint64_t)rows * KVD * 4);
  VkrtTensor v32 = vkrt_tensor_sub(vkrt_tensor(llm->v_stage ? llm->v_stage : llm->gate), 0, (uint64_t)rows * KVD * 4);

  VkrtAttnParams ap = {
    .n_batch = B, .n_q = T, .n_heads = c->n_heads, .head_dim = c->head_dim, .n_kv_heads = c->n_kv_heads,
    .q_start = start, .n_kv = start + T, .kv_capacity = kv->capacity,
    .causal = true, .scale = 1.0f / sqrtf((float)c->head_dim),
    .scratch = llm->attn_scores ? vkrt_tensor(llm->attn_scores) : vkrt_tensor_none(),
    .kv_f16 = f16,
  };

  for (int li = MAX(l0, 0); li < MIN(l1, c->n_layers); li++) {
    const LlmLayer *l = &llm->layers[li];
    vkrt_op_rmsnorm(seq, h, x, vkrt_tensor(l->in_norm), rows, H, c->rms_eps);
    linear(seq, q, h, &l->q, rows, QD, H, 0);
    vkrt_op_rope(seq, q, pos, rows, QD, c->n_heads, c->head_dim, c->rope_theta);
    if (f16) {
      linear(seq, k32, h, &l->k, rows, KVD, H, 0);
      linear(seq, v32, h, &l->v, rows, KVD, H, 0);
      vkrt_op_rope(seq, k32, pos, rows, KVD, c->n_kv_heads, c->head_dim, c->rope_theta);
    }
    /* each sequence's rows land in its cache rows start..start+T-1: fp16 converted from the
     * scratch rows, fp32 straight from the GEMMs */
    for (uint32_t b = 0; b < B; b++) {
      uint64_t off = ((uint64_t)b * kv->capacity + start) * kv_row;
      VkrtTensor kd = vkrt_tensor_sub(vkrt_tensor(kv->k[li]), off, T * kv_row);
      VkrtTensor vd = vkrt_tensor_sub(vkrt_tensor(kv->v[li]), off, T * kv_row);
      if (f16) {
        uint64_t src = (uint64_t)b * T * KVD * 4;
        vkrt_op_f32_to_f16_pair(seq, kd, vkrt_tensor_sub(k32, src, (uint64_t)T * KVD * 4), vd,
                                vkrt_tensor_sub(v32, src, (uint64_t)T * KVD * 4), (uint64_t)T * KVD);
        continue;
      }
      VkrtTensor hb = vkrt_tensor_sub(h, (uint64_t)b * T * H * 4, (uint64_t)T * H * 4);
      VkrtTensor pb = vkrt_tensor_sub(pos, (uint64_t)b * T * 4, (uint64_t)T * 4);
      linear(seq, kd, hb, &l->k, T, KVD, H, 0);
      linear(seq, vd, hb, &l->v, T, KVD, H, 0);
      vkrt_op_rope(seq, kd, pb, T, KVD, c->n_kv_heads, c->head_dim, c->rope_theta);
    }
    vkrt_op_attention(seq, attn, q, vkrt_tensor(kv->k[li]), vkrt_tensor(kv->v[li]), mask, &ap);
    linear(seq, x, attn, &l->o, rows, H, QD, VKRT_MM_ACCUMULATE);

    vkrt_op_rmsnorm(seq, h, x, vkrt_tensor(l->post_norm), rows, H, c->rms_eps);
    linear(seq, gate, h, &l->gate, rows, I, H, 0);
    linear(seq, up, h, &l->up, rows, I, H, 0);
    vkrt_op_silu_mul(seq, gate, gate, up, rows * I);
    linear(seq, x, gate, &l->down, rows, H, I, VKRT_MM_ACCUMULATE);
  }
  return TRUE;
}

gboolean llm_record_token(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor ids, VkrtTensor pos, uint32_t at,
                          VkrtTensor x, VkrtTensor out, GError **error)
{
  llm_record_embed(llm, seq, ids, 1, x);
  return llm_record_forward(llm, seq, kv, x, vkrt_tensor_sub(pos, 0, 4), vkrt_tensor_none(), 1, at, out, error);
}

void llm_record_logits(JfLlm *llm, VkrtSeq *seq, VkrtTensor normed, uint32_t rows, VkrtTensor logits)
{
  linear(seq, logits, normed, &llm->lm_head, rows, llm->cfg.vocab, llm->cfg.hidden, 0);
}

void llm_copy_prefix(JfLlm *llm, VkrtSeq *seq, JfKvCache *dst, uint32_t dst_seq, const JfKvCache *src,
                     uint32_t src_seq, uint32_t n)
{
  if (dst->format != src->format) {
    /* only when the format was forced between the two caches' creation (tests) */
    vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED, "K/V prefix copy from an %s cache to an %s one",
                                        llm_kv_format_name(src->format), llm_kv_format_name(dst->format)));
    return;
  }
  const uint64_t row = kv_row_bytes(llm->cfg.n_kv_heads * llm->cfg.head_dim, src->format);
  const uint64_t doff = (uint64_t)dst_seq * dst->capacity * row, soff = (uint64_t)src_seq * src->capacity * row;
  for (int l = 0; l < llm->cfg.n_layers; l++) {
    vkrt_seq_copy(seq, vkrt_tensor_sub(vkrt_tensor(dst->k[l]), doff, n * row),
                  vkrt_tensor_sub(vkrt_tensor(src->k[l]), soff, n * row), n * row);
    vkrt_seq_copy(seq, vkrt_tensor_sub(vkrt_tensor(dst->v[l]), doff, n * row),
                  vkrt_tensor_sub(vkrt_tensor(src->v[l]), soff, n * row), n * row);
  }
}
