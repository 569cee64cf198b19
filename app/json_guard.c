/* json_guard: see json_guard.h. */
#include "json_guard.h"

JfJsonTextCheck json_guard_check_text(const char *text, gsize len, int max_depth)
{
  int depth = 0;
  gboolean in_str = FALSE, esc = FALSE;
  for (gsize i = 0; i < len; i++) {
    char c = text[i];
    if (in_str) {
      if (esc) esc = FALSE;
      else if (c == '\\') esc = TRUE;
      else if (c == '"') in_str = FALSE;
    } else if (c == '"') {
      in_str = TRUE;
    } else if (c == '\'' || c == '/') {
      return JF_JSON_TEXT_NOT_STRICT;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth)
        return JF_JSON_TEXT_TOO_DEEP;
    } else if (c == ']' || c == '}') {
      depth--;
    }
  }
  return JF_JSON_TEXT_OK;
}

char *json_guard_describe(JfJsonTextCheck check, int max_depth)
{
  switch (check) {
  case JF_JSON_TEXT_TOO_DEEP:
    return g_strdup_printf("JSON nests deeper than %d levels", max_depth);
  case JF_JSON_TEXT_NOT_STRICT:
    return g_strdup("not valid JSON (single quotes or comments outside a string)");
  default:
    return g_strdup("valid");
  }
}
