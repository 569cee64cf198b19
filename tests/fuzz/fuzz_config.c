/* config_load_model / config_load_vae with one JSON file of the tiny fixture replaced by the
 * input. The first byte picks the file (low 3 bits) and whether it is deleted instead (0x80); the
 * rest is its content. The other files stay valid so that every reader gets reached. */
#include "fuzz_common.h"
#include "config.h"
#include <glib/gstdio.h>

static const struct {
  const char *name;
  gboolean vae;
} targets[] = {
  {"config.json", FALSE},
  {"preprocessor_config.json", FALSE},
  {"processor_config.json", FALSE},
  {"special_tokens_map.json", FALSE},
  {"tokenizer_config.json", FALSE},
  {"config.json", TRUE},
};

static char *model_dir, *vae_dir;
static GBytes *originals[G_N_ELEMENTS(targets)];

static char *target_path(guint i)
{
  return g_build_filename(targets[i].vae ? vae_dir : model_dir, targets[i].name, NULL);
}

static void copy_fixture(const char *sub, const char *dir, const char *name)
{
  char *src = g_build_filename(fuzz_data_dir(), "tiny", sub, name, NULL);
  char *text = NULL;
  gsize len = 0;
  if (!g_file_get_contents(src, &text, &len, NULL)) {
    fprintf(stderr, "fuzz_config: cannot read %s (set JF_FUZZ_DATA to tests/data)\n", src);
    abort();
  }
  char *dst = g_build_filename(dir, name, NULL);
  fuzz_write(dst, text, len);
  g_free(dst);
  g_free(text);
  g_free(src);
}

static void remove_dir(void)
{
  for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
    char *p = target_path(i);
    g_unlink(p);
    g_free(p);
  }
  g_rmdir(vae_dir);
  g_rmdir(model_dir);
  char *root = g_path_get_dirname(model_dir);
  g_rmdir(root);
  g_free(root);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  /* /dev/shm when there is one: every input rewrites a file */
  const char *base = g_file_test("/dev/shm", G_FILE_TEST_IS_DIR) && access("/dev/shm", W_OK) == 0 ? "/dev/shm"
                                                                                                   : g_get_tmp_dir();
  char *tmpl = g_build_filename(base, "jf-fuzz-config-XXXXXX", NULL);
  char *root = g_mkdtemp(tmpl);
  FUZZ_CHECK(root);
  model_dir = g_build_filename(root, "janusflow", NULL);
  vae_dir = g_build_filename(root, "vae", NULL);
  g_mkdir(model_dir, 0700);
  g_mkdir(vae_dir, 0700);
  g_free(root);
  for (guint i = 0; i < G_N_ELEMENTS(targets); i++) {
    copy_fixture(targets[i].vae ? "vae" : "janusflow", targets[i].vae ? vae_dir : model_dir, targets[i].name);
    char *p = target_path(i), *text = NULL;
    gsize len = 0;
    g_file_get_contents(p, &text, &len, NULL);
    originals[i] = g_bytes_new_take(text, len);
    g_free(p);
  }
  atexit(remove_dir);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  guint which = (data[0] & 0x7f) % G_N_ELEMENTS(targets);
  char *path = target_path(which);
  if (data[0] & 0x80)
    g_unlink(path);
  else
    fuzz_write(path, data + 1, size - 1);

  GError *error = NULL;
  if (targets[which].vae) {
    JfVaeConfig *v = config_load_vae(vae_dir, &error);
    if (v) {
      FUZZ_CHECK(v->n_blocks >= 1 && v->n_blocks <= JF_VAE_MAX_BLOCKS);
      config_free_vae(v);
    }
  } else {
    JfModelConfig *m = config_load_model(model_dir, &error);
    if (m) {
      /* what the engine relies on once a config loads */
      const JfLlmConfig *l = &m->llm;
      FUZZ_CHECK(l->hidden >= 1 && l->n_heads >= 1 && l->head_dim * l->n_heads == l->hidden);
      FUZZ_CHECK(l->n_kv_heads >= 1 && l->n_heads % l->n_kv_heads == 0 && l->vocab >= 1);
      FUZZ_CHECK(m->proc.bos_token && m->proc.eos_token && m->proc.image_tag && m->proc.image_tag[0]);
      FUZZ_CHECK(m->siglip.layers >= 1 && m->siglip.patch >= 1 && m->proc.num_image_tokens >= 1);
      config_free_model(m);
    }
  }
  if (error) {
    FUZZ_CHECK(error->message && g_utf8_validate(error->message, -1, NULL));
    g_error_free(error);
  }
  gsize len = 0;
  const void *orig = g_bytes_get_data(originals[which], &len);
  fuzz_write(path, orig, len);
  g_free(path);
  return 0;
}
