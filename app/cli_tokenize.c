/* janusflow tokenize: text -> ids (one line, separated by spaces), or with --decode ids -> text. */
#include "cli.h"
#include "tokenizer.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>

/* "1 2, 3" -> ids; FALSE on anything that is not a decimal int32. */
static gboolean parse_ids(const char *s, GArray *out)
{
  const char *p = s;
  for (;;) {
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ',')
      p++;
    if (!*p)
      return TRUE;
    char *end;
    errno = 0;
    gint64 v = g_ascii_strtoll(p, &end, 10);
    if (end == p || errno || v < G_MININT32 || v > G_MAXINT32 ||
        (*end && *end != ' ' && *end != '\t' && *end != '\n' && *end != '\r' && *end != ','))
      return FALSE;
    int32_t id = (int32_t)v;
    g_array_append_val(out, id);
    p = end;
  }
}

static int encode_text(JfTokenizer *tok, const char *text, gboolean bos)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  GError *error = NULL;
  if (!tokenizer_encode(tok, text, -1, bos, ids, &error)) {
    cli_print_error("tokenize: --text: %s", error->message);
    int rc = cli_exit_code(error);
    g_error_free(error);
    g_array_free(ids, TRUE);
    return rc;
  }
  GString *line = g_string_new(NULL);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf(line, i ? " %d" : "%d", g_array_index(ids, int32_t, i));
  g_string_append_c(line, '\n');
  fwrite(line->str, 1, line->len, stdout);
  g_string_free(line, TRUE);
  g_array_free(ids, TRUE);
  return 0;
}

static int decode_ids(JfTokenizer *tok, const char *list, gboolean skip_special)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  if (!parse_ids(list, ids)) {
    cli_print_error("tokenize: --ids: expected integers separated by spaces, got '%s'", list);
    g_array_free(ids, TRUE);
    return 2;
  }
  char *text = tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, skip_special);
  fputs(text, stdout);
  fputc('\n', stdout);
  g_free(text);
  g_array_free(ids, TRUE);
  return 0;
}

int cli_tokenize_main(int argc, char **argv)
{
  char *path = NULL, *text = NULL, *ids = NULL;
  gboolean bos = FALSE, decode = FALSE, skip_special = FALSE;
  /* FILENAME, not STRING: the text reaches us byte for byte, whatever the locale */
  GOptionEntry entries[] = {
    { "tokenizer", 't', 0, G_OPTION_ARG_FILENAME, &path, "tokenizer.json, or the model folder holding it", "FILE" },
    { "text", 0, 0, G_OPTION_ARG_FILENAME, &text, "Text to encode (UTF-8)", "TEXT" },
    { "bos", 0, 0, G_OPTION_ARG_NONE, &bos, "Apply the post-processor template (BOS first)", NULL },
    { "decode", 0, 0, G_OPTION_ARG_NONE, &decode, "Decode --ids instead of encoding", NULL },
    { "ids", 0, 0, G_OPTION_ARG_FILENAME, &ids, "Ids to decode, e.g. \"1 2 3\"", "IDS" },
    { "skip-special", 0, 0, G_OPTION_ARG_NONE, &skip_special, "With --decode: drop special tokens", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- print the token ids of a text");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  int rc = 0;
  JfTokenizer *tok = NULL;
  char *file = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) {
    cli_print_error("tokenize: %s", error->message);
    rc = 2;
  } else if (argc > 1) {
    cli_print_error("tokenize: unexpected argument '%s'", argv[1]);
    rc = 2;
  } else if (!path) {
    cli_print_error("tokenize: --tokenizer FILE is required");
    rc = 2;
  } else if (decode ? !ids : !text) {
    cli_print_error(decode ? "tokenize: --decode needs --ids \"ID ID ...\"" : "tokenize: --text TEXT is required");
    rc = 2;
  }
  if (rc == 0) {
    file = g_file_test(path, G_FILE_TEST_IS_DIR) ? g_build_filename(path, "tokenizer.json", NULL) : g_strdup(path);
    if (!(tok = tokenizer_load(file, &error))) {
      cli_print_error("%s", error->message); /* names the file */
      rc = cli_exit_code(error);
    }
  }
  if (rc == 0)
    rc = decode ? decode_ids(tok, ids, skip_special) : encode_text(tok, text, bos);
  if (fflush(stdout) != 0 && rc == 0) {
    cli_print_error("tokenize: cannot write the output: %s", g_strerror(errno));
    rc = 1;
  }
  tokenizer_free(tok);
  g_clear_error(&error);
  g_free(file);
  g_free(path);
  g_free(text);
  g_free(ids);
  g_option_context_free(oc);
  return rc;
}
