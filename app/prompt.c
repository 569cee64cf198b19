#include "prompt.h"
#include <string.h>
#include <gio/gio.h>

const char *const PROMPT_DEFAULT_SYSTEM =
  "You are a helpful language and vision assistant. You are able to understand the visual content "
  "that the user provides, and assist the user with a variety of tasks using natural language.";

gboolean prompt_check_format(const char *sft_format, GError **error)
{
  if (sft_format && strcmp(sft_format, "deepseek") != 0 && strcmp(sft_format, "deepseek_old") != 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED,
                "processor_config.json: sft_format '%s' is not supported (deepseek, deepseek_old)", sft_format);
    return FALSE;
  }
  return TRUE;
}

/* The template strips each message (content.strip()) and the whole prompt. */
static char *user_content(const char *image_tag, int n_images, const char *question)
{
  GString *s = g_string_new(NULL);
  for (int i = 0; i < n_images; i++)
    g_string_append_printf(s, "%s\n", image_tag);
  g_string_append(s, question);
  char *c = g_string_free(s, FALSE);
  return g_strstrip(c);
}

char *prompt_first_turn(const char *system, const char *image_tag, int n_images, const char *question)
{
  char *content = user_content(image_tag, n_images, question);
  GString *s = g_string_new(NULL);
  if (system && *system)
    g_string_append_printf(s, "%s\n\n", system);
  if (*content)
    g_string_append_printf(s, "User: %s\n\n", content);
  else
    g_string_append(s, "User:");
  g_string_append(s, "Assistant:");
  g_free(content);
  char *r = g_string_free(s, FALSE);
  /* the template strips the whole string; only leading whitespace of the system prompt can matter */
  char *stripped = g_strdup(g_strchug(r));
  g_free(r);
  return stripped;
}

char *prompt_next_turn(const char *image_tag, int n_images, const char *question)
{
  char *content = user_content(image_tag, n_images, question);
  char *r = *content ? g_strdup_printf("User: %s\n\nAssistant:", content) : g_strdup("User:Assistant:");
  g_free(content);
  return r;
}

char *prompt_generation(const char *prompt, const char *tag)
{
  char *p = g_strstrip(g_strdup(prompt));
  char *r = g_strdup_printf("User: %s\n\nAssistant:%s", p, tag);
  g_free(p);
  return r;
}
