/* Temporary during development: replaced as soon as the VAE module lands. */
#include "model.h"

gboolean model_load_parts(JfModel *m, unsigned what, JfProgressFunc progress, void *user, GError **error)
{
  (void)m; (void)what; (void)progress; (void)user;
  g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "vision/generation parts: not wired yet");
  return FALSE;
}

gboolean model_ensure_gen_batch(JfModel *m, int batch, GError **error)
{
  (void)m; (void)batch;
  g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "generation: not wired yet");
  return FALSE;
}

void model_free_parts(JfModel *m)
{
  (void)m;
}
