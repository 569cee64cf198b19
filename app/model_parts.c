#include "model.h"

gboolean model_load_parts(JfModel *m, unsigned what, JfProgressFunc progress, void *user, GError **error)
{
  (void)m; (void)what; (void)progress; (void)user;
  g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "vision/generation parts: not wired yet");
  return FALSE;
}

void model_free_parts(JfModel *m)
{
  (void)m;
}
