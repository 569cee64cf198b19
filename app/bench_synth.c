#include "bench_synth.h"
#include "prompt.h"
#include <gio/gio.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/* tools/jf-make-checkpoint.c, compiled into the engine with its main() renamed (app/meson.build):
 * the bench then works wherever the janusflow binary is, without the tool installed beside it. */
int jf_make_checkpoint_main(int argc, char **argv);

static const struct {
  const char *name;
  double model_params, vae_params;  /* as the writer's presets make them */
} presets[] = {
  { "tiny", 0.4e6, 0.6e6 },
  { "small", 216.8e6, 12.4e6 },
  { "full", 2046367504.0, 49490199.0 },
};

gboolean bench_synth_preset(const char *name, double *model_params, double *vae_params)
{
  for (size_t i = 0; name && i < G_N_ELEMENTS(presets); i++)
    if (strcmp(name, presets[i].name) == 0) {
      *model_params = presets[i].model_params;
      *vae_params = presets[i].vae_params;
      return TRUE;
    }
  return FALSE;
}

static void print_to_stderr(const gchar *s) { fputs(s, stderr); }

gboolean bench_synth_ensure(const char *name, char **model_dir, char **vae_dir, GError **error)
{
  double mp, vp;
  if (!bench_synth_preset(name, &mp, &vp)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--synthetic '%s': use tiny, small or full", name);
    return FALSE;
  }
  char *root = g_build_filename(g_get_user_cache_dir(), "janusflow", "synthetic", name, NULL);
  char *mark = g_build_filename(root, "complete", NULL);
  *model_dir = g_build_filename(root, "janusflow", NULL);
  *vae_dir = g_build_filename(root, "vae", NULL);
  gboolean ok = FALSE;
  if (g_file_test(mark, G_FILE_TEST_EXISTS)) {
    ok = TRUE;
    goto out;
  }
  /* model in bf16, VAE decoder in f32, as the writer stores them */
  double disk = mp * 2 + vp * 4;
  if (g_mkdir_with_parents(root, 0755) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "cannot create %s: %s", root, g_strerror(errno));
    goto out;
  }
  GFile *dir = g_file_new_for_path(root);
  GFileInfo *fs = g_file_query_filesystem_info(dir, G_FILE_ATTRIBUTE_FILESYSTEM_FREE, NULL, NULL);
  g_object_unref(dir);
  if (fs) {
    guint64 free_b = g_file_info_get_attribute_uint64(fs, G_FILE_ATTRIBUTE_FILESYSTEM_FREE);
    g_object_unref(fs);
    if (free_b > 0 && (double)free_b < disk * 1.05) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                  "the synthetic '%s' checkpoint needs %.2f GB on disk but %s has %.2f GB free", name, disk / 1e9,
                  root, (double)free_b / 1e9);
      goto out;
    }
  }
  fprintf(stderr, "janusflow bench: writing the synthetic '%s' checkpoint (random weights, seed 0, %.2f GB on disk) "
          "to %s; this happens once\n", name, disk / 1e9, root);
  {
    char *argv[] = { "jf-make-checkpoint", "--preset", (char *)name, "--out", *model_dir, "--vae-out", *vae_dir, NULL };
    char **args = g_strdupv(argv);  /* the option parser rearranges its argv */
    int argc = (int)g_strv_length(args);
    char **keep = g_memdup2(args, sizeof(char *) * (argc + 1));
    /* its per-file summary lines go to stderr: stdout may be the --json report */
    GPrintFunc old = g_set_print_handler(print_to_stderr);
    int rc = jf_make_checkpoint_main(argc, args);
    g_set_print_handler(old);
    g_strfreev(keep);
    g_free(args);
    if (rc != 0) {
      g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "writing the synthetic '%s' checkpoint to %s failed (see above)",
                  name, root);
      goto out;
    }
  }
  ok = g_file_set_contents(mark, "written by janusflow bench (jf-make-checkpoint, seed 0)\n", -1, error);

out:
  if (!ok) {
    g_clear_pointer(model_dir, g_free);
    g_clear_pointer(vae_dir, g_free);
  }
  g_free(root);
  g_free(mark);
  return ok;
}

void bench_prompts_clear(BenchPrompts *p)
{
  if (p->chat_ids)
    g_array_unref(p->chat_ids);
  g_free(p->gen_prompt);
  g_free(p->tokenizer);
  memset(p, 0, sizeof *p);
}

/* P of a generation prompt: its ids with BOS, minus the trailing image-start tag. */
static int gen_prefix_len(JfTokenizer *tok, const char *prompt, const char *start_tag, GError **error)
{
  char *text = prompt_generation(prompt, start_tag);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  int n = tokenizer_encode(tok, text, -1, TRUE, ids, error) ? (int)ids->len - 1 : -1;
  g_array_unref(ids);
  g_free(text);
  return n;
}

/* A stand-in for prompt whose prefix in tok has `target` tokens: the prompt cut short, or padded
 * with '.', one character at a time (exact for byte-level tokenizers such as the synthetic
 * checkpoints'; otherwise the closest found). */
static char *fit_prompt(JfTokenizer *tok, const char *prompt, const char *start_tag, int target, int *got,
                        GError **error)
{
  GString *s = g_string_new(prompt);
  int n = gen_prefix_len(tok, s->str, start_tag, error);
  for (int guard = 0; n > target && g_utf8_strlen(s->str, -1) > 1 && guard < 100000; guard++) {
    const char *last = g_utf8_find_prev_char(s->str, s->str + s->len);
    g_string_truncate(s, last - s->str);
    n = gen_prefix_len(tok, s->str, start_tag, error);
  }
  for (int guard = 0; n >= 0 && n < target && guard < 100000; guard++) {
    g_string_append_c(s, '.');
    n = gen_prefix_len(tok, s->str, start_tag, error);
  }
  *got = n;
  if (n < 0) {
    g_string_free(s, TRUE);
    return NULL;
  }
  return g_string_free(s, FALSE);
}

gboolean bench_prompts_make(JfModel *m, const char *prompt, const char *ref_tokenizer, BenchPrompts *out,
                            GError **error)
{
  const JfProcessorConfig *pc = &m->cfg->proc;
  const JfSiglipConfig *sc = &m->cfg->siglip;
  memset(out, 0, sizeof *out);
  JfTokenizer *tok = m->tok;
  JfSpecialIds tid = m->ids;  /* the tags' ids in tok */
  if (ref_tokenizer) {
    if (!(tok = tokenizer_load(ref_tokenizer, error)))
      return FALSE;
    /* the processor's runtime tags, added in its order as for a real checkpoint */
    tid.image_tag = tokenizer_add_special(tok, pc->image_tag);
    tid.image_gen_tag = tokenizer_add_special(tok, pc->image_gen_tag);
    tid.image_start_tag = tokenizer_add_special(tok, pc->image_start_tag);
    tid.image_end_tag = tokenizer_add_special(tok, pc->image_end_tag);
    tid.bos = tokenizer_bos_id(tok);
  }
  gboolean ok = FALSE;
  GArray *text_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  char *text = prompt_first_turn(PROMPT_DEFAULT_SYSTEM, pc->image_tag, 1, prompt);
  if (!tokenizer_encode(tok, text, -1, TRUE, text_ids, error))
    goto out;

  out->image_tokens = (uint32_t)((sc->image_size / sc->patch) * (sc->image_size / sc->patch));
  out->chat_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  const int32_t fold = MAX(m->cfg->llm.vocab - 8, 1);
  gboolean seen = FALSE;
  for (guint i = 0; i < text_ids->len; i++) {
    int32_t id = g_array_index(text_ids, int32_t, i);
    if (id == tid.image_tag && !seen) {
      seen = TRUE;
      out->image_start = out->chat_ids->len;
      g_array_append_val(out->chat_ids, m->ids.image_start_tag);
      for (uint32_t k = 0; k < out->image_tokens; k++)
        g_array_append_val(out->chat_ids, m->ids.image_tag);
      g_array_append_val(out->chat_ids, m->ids.image_end_tag);
      continue;
    }
    if (ref_tokenizer)
      id = id == tid.bos ? m->ids.bos : id == tid.image_start_tag ? m->ids.image_start_tag
         : id == tid.image_end_tag ? m->ids.image_end_tag : id == tid.image_gen_tag ? m->ids.image_gen_tag
         : id % fold;  /* distinct tokens may share a row: irrelevant for timing */
    g_array_append_val(out->chat_ids, id);
  }
  if (!seen) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the chat prompt has no image tag after tokenization");
    goto out;
  }

  int p = gen_prefix_len(tok, prompt, pc->image_start_tag, error);
  if (p < 0)
    goto out;
  out->gen_prefix = (uint32_t)p;
  if (ref_tokenizer) {
    int got = 0;
    if (!(out->gen_prompt = fit_prompt(m->tok, prompt, pc->image_start_tag, p, &got, error)))
      goto out;
    out->gen_prefix_got = (uint32_t)got;
    char *base = g_path_get_basename(ref_tokenizer);
    char *dir = g_path_get_dirname(ref_tokenizer);
    char *dbase = g_path_get_basename(dir);
    out->tokenizer = g_strdup_printf("%s/%s (lengths), chat ids folded into the model's %d ids; the generation "
                                     "prompt is a %d-byte stand-in with the same P in the model's tokenizer",
                                     dbase, base, m->cfg->llm.vocab, (int)strlen(out->gen_prompt));
    g_free(base);
    g_free(dir);
    g_free(dbase);
  } else {
    out->gen_prompt = g_strdup(prompt);
    out->gen_prefix_got = out->gen_prefix;
    out->tokenizer = g_strdup("the model folder's tokenizer.json");
  }
  ok = TRUE;

out:
  if (!ok)
    bench_prompts_clear(out);
  if (tok != m->tok)
    tokenizer_free(tok);
  g_array_unref(text_ids);
  g_free(text);
  return ok;
}
