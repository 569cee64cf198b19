/* json_guard: the check every JSON reader runs on a file's text before json-glib sees it.
 *
 * json-glib (1.6) recurses once per nesting level without a bound, so a file of a few MB of '['
 * overflows the stack. It also accepts 'single-quoted' strings and C comments, which could hide
 * brackets from a depth count; strict JSON has neither, so outside strings ' and / are refused. */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

typedef enum {
  JF_JSON_TEXT_OK = 0,
  JF_JSON_TEXT_TOO_DEEP,     /* more than max_depth nested arrays/objects */
  JF_JSON_TEXT_NOT_STRICT,   /* single quotes or comments outside a string */
} JfJsonTextCheck;

JfJsonTextCheck json_guard_check_text(const char *text, gsize len, int max_depth);

/* A one-line description of a failed check ("JSON nests deeper than 64 levels", ...); caller frees. */
char *json_guard_describe(JfJsonTextCheck check, int max_depth);

G_END_DECLS
