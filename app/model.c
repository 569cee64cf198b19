#include "model.h"
#include <string.h>

static int32_t lookup_required(JfTokenizer *tok, const char *content, const char *what,
                               const char *path, GError **error)
{
  int32_t id = content ? tokenizer_token_id(tok, content) : -1;
  if (id < 0)
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                "%s: the %s token '%s' is not in the vocabulary", path, what, content ? content : "(none)");
  return id;
}

/* The processor's runtime rule (VLChatProcessor): each tag missing from the tokenizer is added as
 * a special token with the next free id, in this fixed order. The embedding rows were trained
 * with these ids, so the order matters. */
static gboolean resolve_ids(JfModel *m, const char *tok_path, GError **error)
{
  JfProcessorConfig *pc = &m->cfg->proc;
  JfSpecialIds *ids = &m->ids;
  ids->image_tag = tokenizer_add_special(m->tok, pc->image_tag);
  ids->image_gen_tag = tokenizer_add_special(m->tok, pc->image_gen_tag);
  ids->image_start_tag = tokenizer_add_special(m->tok, pc->image_start_tag);
  ids->image_end_tag = tokenizer_add_special(m->tok, pc->image_end_tag);

  if (pc->bos_token) {
    if ((ids->bos = lookup_required(m->tok, pc->bos_token, "BOS", tok_path, error)) < 0)
      return FALSE;
  } else if ((ids->bos = tokenizer_bos_id(m->tok)) < 0) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: no BOS token defined", tok_path);
    return FALSE;
  }
  if ((ids->eos = lookup_required(m->tok, pc->eos_token, "EOS", tok_path, error)) < 0)
    return FALSE;
  ids->pad = pc->pad_token ? tokenizer_token_id(m->tok, pc->pad_token) : -1;
  if (ids->pad < 0)
    ids->pad = ids->eos;  /* VLChatProcessor.pad_id falls back to EOS */

  int32_t n = tokenizer_n_ids(m->tok);
  if (n > m->cfg->llm.vocab) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                "%s does not match the model: it has %d ids (with the processor's image tags) but "
                "config.json vocab_size is %d", tok_path, n, m->cfg->llm.vocab);
    return FALSE;
  }
  return TRUE;
}

gboolean model_check_folder(const char *dir, const char *vae_dir, GError **error)
{
  JfModelConfig *cfg = config_load_model(dir, error);
  if (!cfg)
    return FALSE;
  config_free_model(cfg);
  const char *files[] = { "model.safetensors", "tokenizer.json" };
  for (size_t i = 0; i < G_N_ELEMENTS(files); i++) {
    char *p = g_build_filename(dir, files[i], NULL);
    gboolean ok = g_file_test(p, G_FILE_TEST_IS_REGULAR);
    if (!ok)
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: not found", p);
    g_free(p);
    if (!ok)
      return FALSE;
  }
  if (vae_dir) {
    JfVaeConfig *vc = config_load_vae(vae_dir, error);
    if (!vc)
      return FALSE;
    config_free_vae(vc);
    char *p = g_build_filename(vae_dir, "diffusion_pytorch_model.safetensors", NULL);
    gboolean ok = g_file_test(p, G_FILE_TEST_IS_REGULAR);
    if (!ok)
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: not found", p);
    g_free(p);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

uint64_t model_weight_bytes(const StFile *st, unsigned what, JfWeightFormat wf)
{
  uint64_t total = 0;
  for (guint i = 0; i < safetensors_n_tensors(st); i++) {
    const StTensor *t = safetensors_tensor(st, i);
    const char *n = t->name;
    gboolean want =
      ((what & JF_LOAD_LLM) && g_str_has_prefix(n, "language_model.")) ||
      ((what & JF_LOAD_VISION) && (g_str_has_prefix(n, "vision_und_enc") || g_str_has_prefix(n, "beg_of_und_embed")) &&
       !strstr(n, ".attn_pool.")) ||
      ((what & JF_LOAD_GENERATION) && g_str_has_prefix(n, "vision_gen_"));
    if (want)
      total += g_str_has_prefix(n, "language_model.") ? llm_tensor_device_bytes(t, wf) : t->n_elements * 2;
  }
  return total;
}

/* GiB with two decimals, smaller units for small models (test checkpoints), plain spaces: the
 * message is grepped in logs and terminals. */
static char *format_bytes(uint64_t b)
{
  if (b >= (1ull << 30))
    return g_strdup_printf("%.2f GiB", b / 1073741824.0);
  if (b >= (1ull << 20))
    return g_strdup_printf("%.1f MiB", b / 1048576.0);
  return g_strdup_printf("%.1f KiB", b / 1024.0);
}

/* Refuses early, with sizes, a model that cannot fit the device: uploading 4 GB only to fail
 * half way is slow and leaves the user guessing. */
static gboolean check_fits(VkrtContext *ctx, const StFile *st, unsigned what, JfWeightFormat wf, const char *path,
                           GError **error)
{
  const VkrtDeviceInfo *info = vkrt_context_info(ctx);
  uint64_t need = model_weight_bytes(st, what, wf);
  uint64_t have = info->device_local_bytes;
  if (have && need > have) {
    /* suggest 8-bit weights only when they would fit */
    uint64_t need_q8 = wf == JF_WEIGHTS_BF16 ? model_weight_bytes(st, what, JF_WEIGHTS_Q8_0) : need;
    g_autofree char *need_s = format_bytes(need), *have_s = format_bytes(have), *q8_s = format_bytes(need_q8);
    char *q8_note = wf != JF_WEIGHTS_BF16 || !(what & JF_LOAD_LLM) ? g_strdup("")
                    : need_q8 > have ? g_strdup_printf(" (with 8-bit weights it would still need %s)", q8_s)
                    : NULL;
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM,
                "%s: the model needs %s of device memory for its weights (%s) but %s has %s%s; "
                "use a device with more memory (janusflow info lists them)%s",
                path, need_s, llm_weight_format_name(wf), info->name, have_s,
                q8_note ? q8_note : "", q8_note ? "" : " or --weights q8_0");
    g_free(q8_note);
    return FALSE;
  }
  return TRUE;
}

JfModel *model_load(VkrtContext *ctx, const char *dir, const char *vae_dir, unsigned what,
                    JfProgressFunc progress, void *user, GError **error)
{
  return model_load_opts(ctx, dir, vae_dir, what, NULL, progress, user, error);
}

JfModel *model_load_opts(VkrtContext *ctx, const char *dir, const char *vae_dir, unsigned what,
                         const JfLoadOptions *opt, JfProgressFunc progress, void *user, GError **error)
{
  const JfWeightFormat wf = opt ? opt->weights : JF_WEIGHTS_BF16;
  JfModel *m = g_new0(JfModel, 1);
  m->ctx = ctx;
  m->dir = g_strdup(dir);
  m->vae_dir = g_strdup(vae_dir);
  char *tok_path = g_build_filename(dir, "tokenizer.json", NULL);
  char *st_path = g_build_filename(dir, "model.safetensors", NULL);
  gboolean ok = FALSE;

  if (progress) progress(0.0, "reading configuration", user);
  if (!(m->cfg = config_load_model(dir, error)))
    goto out;
  if (progress) progress(0.02, "loading tokenizer", user);
  if (!(m->tok = tokenizer_load(tok_path, error)) || !resolve_ids(m, tok_path, error))
    goto out;
  if (!(m->st = safetensors_open(st_path, error)))
    goto out;
  if (!check_fits(ctx, m->st, what, wf, st_path, error))
    goto out;
  if (what & JF_LOAD_LLM) {
    if (progress)
      progress(0.05, wf == JF_WEIGHTS_Q8_0 ? "uploading language model (quantizing to q8_0)" : "uploading language model",
               user);
    if (!(m->llm = llm_new(ctx, m->st, &m->cfg->llm, wf, error)))
      goto out;
  }
  if (what & (JF_LOAD_VISION | JF_LOAD_GENERATION)) {
    if (!model_load_parts(m, what, progress, user, error))
      goto out;
  }
  if (progress) progress(1.0, "ready", user);
  ok = TRUE;

out:
  g_free(tok_path);
  g_free(st_path);
  if (!ok) {
    model_free(m);
    return NULL;
  }
  return m;
}

void model_free(JfModel *m)
{
  if (!m)
    return;
  model_free_parts(m);
  llm_free(m->llm);
  if (m->st) safetensors_close(m->st);
  if (m->tok) tokenizer_free(m->tok);
  if (m->cfg) config_free_model(m->cfg);
  if (m->vae_cfg) config_free_vae(m->vae_cfg);
  g_free(m->dir);
  g_free(m->vae_dir);
  g_free(m);
}
