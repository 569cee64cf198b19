#include "cli.h"
#include "safetensors.h"
#include "image.h"
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

VkrtContext *cli_open_device(const char *selector, GError **error)
{
  VkrtOptions opt = { .device = selector, .validate = false };
  return vkrt_context_new(&opt, error);
}

gboolean cli_check_utf8(const char *option, const char *value, GError **error)
{
  if (value && !g_utf8_validate(value, -1, NULL)) {
    g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "%s: the text is not valid UTF-8", option);
    return FALSE;
  }
  return TRUE;
}
