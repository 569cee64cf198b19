#define G_LOG_DOMAIN "janusflow"
#include "pipelines.h"
#include "ops.h"
#include "siglip.h"
#include <string.h>

/* About as long as prompts people type (P ~ 20 tokens with the generation template), so that
 * the prompt pass takes the same kernels as theirs. */
#define WARM_PROMPT "a watercolor painting of a lighthouse on a rocky coast at sunset, soft light"
#define WARM_CHAT_CONTEXT 512
/* A chat about an image starts decoding after some 600 prompt tokens (576 image tokens in
 * JanusFlow-1.3B); past a few hundred keys a GPU's decode attention takes the split-K form
 * (vk/op_attention.c), which the short warm-up chat never reaches. */
#define WARM_LONG_CONTEXT 768

char *pipelines_cache_dir(void)
{
  const char *env = g_getenv("JANUSFLOW_PIPELINE_CACHE");
  if (env) {
    if (!*env || !strcmp(env, "0") || !g_ascii_strcasecmp(env, "off"))
      return NULL;
    return g_strdup(env);
  }
  return g_build_filename(g_get_user_cache_dir(), "janusflow", "pipelines", NULL);
}

gboolean pipelines_warm_generation(JfModel *m, JfGen *g, GCancellable *cancel, GError **error)
{
  VkrtContext *ctx = m->ctx;
  /* the self-check compares real results: it must not meet record-only mode */
  (void)vkrt_ops_coopmat_usable(ctx, NULL);
  JfGenParams p = gen_params_defaults();
  p.prompt = WARM_PROMPT;
  p.steps = 2;  /* the second step replays the first's recording */
  p.preview = JF_PREVIEW_FAST;
  JfImage **images = NULL;
  vkrt_context_set_record_only(ctx, true);
  gboolean ok = gen_run(g, &p, NULL, NULL, NULL, cancel, &images, error);
  vkrt_context_set_record_only(ctx, false);
  if (images) {
    image_free(images[0]);
    g_free(images);
  }
  return ok;
}

/* One decode step recorded at the last position of a WARM_LONG_CONTEXT cache, record-only:
 * nothing runs, so neither the cache's nor the buffers' contents matter. */
static gboolean warm_long_decode(JfModel *m, GError **error)
{
  JfLlm *llm = m->llm;
  const uint64_t row = (uint64_t)llm_config(llm)->hidden * 4;
  JfKvCache *kv = llm_kv_new(llm, 1, WARM_LONG_CONTEXT, error);
  VkrtBuffer *ids = kv ? vkrt_buffer_new(m->ctx, 16, error) : NULL;
  VkrtBuffer *pos = ids ? vkrt_buffer_new(m->ctx, 16, error) : NULL;
  VkrtBuffer *x = pos ? vkrt_buffer_new(m->ctx, row, error) : NULL;
  VkrtSeq *seq = x ? vkrt_seq_new(m->ctx, error) : NULL;
  gboolean ok = FALSE;
  if (seq) {
    vkrt_context_set_record_only(m->ctx, true);
    vkrt_seq_begin(seq);
    ok = llm_record_token(llm, seq, kv, vkrt_tensor(ids), vkrt_tensor(pos), WARM_LONG_CONTEXT - 1, vkrt_tensor(x),
                          vkrt_tensor(x), error) &&
         vkrt_seq_submit(seq, error);
    vkrt_context_set_record_only(m->ctx, false);
  }
  vkrt_seq_free(seq);
  VkrtBuffer *bufs[] = { x, pos, ids };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    if (bufs[i]) vkrt_buffer_free(bufs[i]);
  llm_kv_free(kv);
  return ok;
}

gboolean pipelines_warm_chat(JfModel *m, GCancellable *cancel, GError **error)
{
  if (!m->llm)
    return TRUE;
  uint32_t context = MIN(WARM_CHAT_CONTEXT, (uint32_t)llm_config(m->llm)->max_pos);
  JfChat *c = chat_new(m, NULL, context, error);
  if (!c)
    return FALSE;
  JfSampling s = sampler_defaults();
  s.max_new_tokens = 2;  /* the prompt's token, then one decode step */
  gboolean ok = chat_send(c, "Hello", NULL, 0, &s, NULL, NULL, cancel, NULL, error);
  chat_free(c);
  return ok && warm_long_decode(m, error);
}

gboolean pipelines_warm_vision(JfModel *m, GError **error)
{
  if (!m->siglip)
    return TRUE;
  JfSiglip *sg = m->siglip;
  uint32_t S = siglip_image_size(sg);
  uint64_t row = (uint64_t)siglip_hidden(sg) * 4;
  float *pixels = g_new0(float, 3 * (gsize)S * S);
  VkrtBuffer *out = vkrt_buffer_new(m->ctx, siglip_n_tokens(sg) * row, error);
  VkrtSeq *seq = out ? vkrt_seq_new(m->ctx, error) : NULL;
  gboolean ok = FALSE;
  if (seq) {
    vkrt_context_set_record_only(m->ctx, true);
    vkrt_seq_begin(seq);
    ok = siglip_encode(sg, seq, pixels, vkrt_tensor(out), error);
    if (ok) {
      siglip_record_beg_embed(sg, seq, vkrt_tensor_sub(vkrt_tensor(out), 0, row));
      ok = vkrt_seq_submit(seq, error);
    }
    vkrt_context_set_record_only(m->ctx, false);
  }
  vkrt_seq_free(seq);
  if (out)
    vkrt_buffer_free(out);
  g_free(pixels);
  return ok;
}

gboolean pipelines_warm_up(JfModel *m, JfGen *g, GCancellable *cancel, uint64_t *created, GError **error)
{
  uint64_t n0 = vkrt_context_pipelines_created(m->ctx);
  gboolean ok = (!g || pipelines_warm_generation(m, g, cancel, error)) && pipelines_warm_chat(m, cancel, error) &&
                pipelines_warm_vision(m, error);
  if (created)
    *created = vkrt_context_pipelines_created(m->ctx) - n0;
  GError *e = NULL;
  if (!vkrt_context_save_pipeline_cache(m->ctx, &e)) {
    g_debug("pipeline cache not saved after the warm-up: %s", e->message);
    g_error_free(e);
  }
  return ok;
}
