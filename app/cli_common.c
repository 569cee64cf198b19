#include "cli.h"
#include "safetensors.h"
#include "image.h"
#include "pipelines.h"
#include <gio/gio.h>

int cli_exit_code(const GError *error)
{
  if (!error)
    return 0;
  if (error->domain == JF_LOAD_ERROR || error->domain == JF_IMAGE_ERROR || error->domain == G_OPTION_ERROR ||
      error->domain == G_FILE_ERROR || error->domain == G_CONVERT_ERROR)
    return 2;
  if (error->domain == G_IO_ERROR && error->code != G_IO_ERROR_CANCELLED && error->code != G_IO_ERROR_FAILED)
    return 2;
  return 1;
}

/* Every command's context reads and writes the on-disk pipeline cache (pipelines_cache_dir):
 * a second run compiles nothing the first one did. */
VkrtContext *cli_open_device(const char *selector, GError **error)
{
  char *cache = pipelines_cache_dir();
  VkrtOptions opt = { .device = selector, .validate = false, .pipeline_cache_dir = cache };
  VkrtContext *ctx = vkrt_context_new(&opt, error);
  g_free(cache);
  return ctx;
}

gboolean cli_check_utf8(const char *option, const char *value, GError **error)
{
  if (value && !g_utf8_validate(value, -1, NULL)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: the text is not valid UTF-8", option);
    return FALSE;
  }
  return TRUE;
}
