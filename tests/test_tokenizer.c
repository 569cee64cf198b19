/* Tokenizer tests: the DeepSeek-LLM vocabulary's cases (ids exact, decode as HF), the tiny
 * fixture's cases after the processor's runtime additions, the regex engine, lossy decoding,
 * malformed files, invalid UTF-8, speed, and the janusflow tokenize command over every case. */
#include "tokenizer.h"
#include "tokregex.h"
#include "safetensors.h"
#include "test_util.h"
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char *deepseek_path(void) { return test_data_path("tokenizer-deepseek-llm/tokenizer.json"); }

static char *tiny_path(void)
{
  char *p = test_data_path("tiny/janusflow/tokenizer.json");
  if (!g_file_test(p, G_FILE_TEST_EXISTS)) {
    g_free(p);
    p = test_data_path("tiny-tokenizer/tokenizer.json");
  }
  return p;
}

static char *tiny_cases_path(void)
{
  char *p = test_data_path("tiny/expected/tokenizer_cases.json");
  if (!g_file_test(p, G_FILE_TEST_EXISTS)) {
    g_free(p);
    p = test_data_path("tiny-tokenizer/tokenizer_cases.json");
  }
  return p;
}

static JfTokenizer *deepseek(void)
{
  static JfTokenizer *tok;
  if (!tok) {
    char *path = deepseek_path();
    GError *error = NULL;
    gint64 t0 = g_get_monotonic_time();
    tok = tokenizer_load(path, &error);
    g_assert_no_error(error);
    g_test_message("deepseek tokenizer.json loaded in %.0f ms", (g_get_monotonic_time() - t0) / 1000.0);
    g_free(path);
  }
  return tok;
}

/* Each line of cases.jsonl as a JsonObject (owned by the returned parsers). */
static GPtrArray *read_jsonl(const char *path)
{
  char *data = NULL;
  GError *error = NULL;
  g_assert_true(g_file_get_contents(path, &data, NULL, &error));
  g_assert_no_error(error);
  GPtrArray *parsers = g_ptr_array_new_with_free_func(g_object_unref);
  char **lines = g_strsplit(data, "\n", -1);
  for (int i = 0; lines[i]; i++) {
    if (!*lines[i])
      continue;
    JsonParser *p = json_parser_new();
    g_assert_true(json_parser_load_from_data(p, lines[i], -1, &error));
    g_assert_no_error(error);
    g_ptr_array_add(parsers, p);
  }
  g_strfreev(lines);
  g_free(data);
  return parsers;
}

static JsonObject *case_obj(GPtrArray *parsers, guint i)
{
  return json_node_get_object(json_parser_get_root(g_ptr_array_index(parsers, i)));
}

static GArray *ids_of(JsonArray *a)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  for (guint i = 0; i < json_array_get_length(a); i++) {
    int32_t v = (int32_t)json_array_get_int_element(a, i);
    g_array_append_val(ids, v);
  }
  return ids;
}

static char *ids_str(const GArray *ids)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < ids->len; i++)
    g_string_append_printf(s, i ? " %d" : "%d", g_array_index(ids, int32_t, i));
  return g_string_free(s, FALSE);
}

static void assert_ids(const char *text, const GArray *got, const GArray *want)
{
  char *g = ids_str(got), *w = ids_str(want);
  if (strcmp(g, w) != 0) {
    char *esc = g_strescape(text, NULL);
    g_test_message("text \"%s\"\n  got  %s\n  want %s", esc, g, w);
    g_free(esc);
  }
  g_assert_cmpstr(g, ==, w);
  g_free(g);
  g_free(w);
}

/* ---- DeepSeek vocabulary ---- */

static void test_deepseek_ids(void)
{
  JfTokenizer *tok = deepseek();
  g_assert_cmpint(tokenizer_bos_id(tok), ==, 100000);
  g_assert_cmpint(tokenizer_n_ids(tok), ==, 100016);
  g_assert_cmpint(tokenizer_token_id(tok, "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>"), ==, 100001);
  g_assert_true(tokenizer_is_special(tok, 100000));
  g_assert_true(tokenizer_is_special(tok, 100015));
  g_assert_false(tokenizer_is_special(tok, 100014)); /* the one-character added tokens are not special */
  g_assert_false(tokenizer_is_special(tok, 17464));
  g_assert_false(tokenizer_is_special(tok, -1));
  g_assert_false(tokenizer_is_special(tok, 100016));
  g_assert_cmpint(tokenizer_token_id(tok, "Hello"), ==, 17464);
  g_assert_cmpint(tokenizer_token_id(tok, "no such token here"), ==, -1);
}

static void test_deepseek_cases(void)
{
  JfTokenizer *tok = deepseek();
  char *path = test_data_path("tokenizer-deepseek-llm/cases.jsonl");
  GPtrArray *cases = read_jsonl(path);
  g_assert_cmpuint(cases->len, >=, 77);
  for (guint i = 0; i < cases->len; i++) {
    JsonObject *c = case_obj(cases, i);
    const char *text = json_object_get_string_member(c, "text");
    gboolean bos = json_object_get_boolean_member(c, "with_bos");
    GArray *want = ids_of(json_object_get_array_member(c, "ids"));
    GArray *got = g_array_new(FALSE, FALSE, sizeof(int32_t));
    GError *error = NULL;
    g_assert_true(tokenizer_encode(tok, text, -1, bos, got, &error));
    g_assert_no_error(error);
    assert_ids(text, got, want);
    /* HF decode(ids, skip_special_tokens=True) */
    char *dec = tokenizer_decode(tok, (const int32_t *)got->data, got->len, TRUE);
    const char *expect = json_object_has_member(c, "decoded") ? json_object_get_string_member(c, "decoded") : text;
    g_assert_cmpstr(dec, ==, expect);
    g_free(dec);
    g_array_free(got, TRUE);
    g_array_free(want, TRUE);
  }
  g_ptr_array_free(cases, TRUE);
  g_free(path);
}

/* The llama.cpp vectors of MODEL.md section 8.2, independent of cases.jsonl. */
static void test_deepseek_spec_vectors(void)
{
  static const struct { const char *text; const char *ids; gboolean bos; } v[] = {
    { " ", "207", FALSE },
    { "\t\n", "184 185", FALSE },
    { "    Hello\n    Hello", "300 37727 185 300 37727", FALSE },
    { "Hello, y'all! How are you \xF0\x9F\x98\x81 ?\xE6\x88\x91\xE6\x83\xB3\xE5\x9C\xA8" "apple"
      "\xE5\xB7\xA5\xE4\xBD\x9C" "1314151\xE5\xA4\xA9\xEF\xBD\x9E",
      "17464 11 320 6 436 0 1724 418 340 33701 210 3025 19017 612 9407 2681 16 18 16 19 16 20 16 1398 68940 239", FALSE },
    { "Hello, how are you?", "100000 17464 11 946 418 340 30", TRUE },
    { "F\xC3\xBChrer", "37 100014 71 6245", FALSE },
    { "<\xEF\xBD\x9C" "end\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>", "100001", FALSE },
  };
  JfTokenizer *tok = deepseek();
  for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
    GArray *got = g_array_new(FALSE, FALSE, sizeof(int32_t));
    g_assert_true(tokenizer_encode(tok, v[i].text, -1, v[i].bos, got, NULL));
    char *s = ids_str(got);
    g_assert_cmpstr(s, ==, v[i].ids);
    g_free(s);
    g_array_free(got, TRUE);
  }
  /* "Führer" decodes the HF way: ü (100014) is the byte 0xFC -> U+FFFD */
  int32_t fuhrer[] = { 37, 100014, 71, 6245 };
  char *d = tokenizer_decode(tok, fuhrer, 4, TRUE);
  g_assert_cmpstr(d, ==, "F\xEF\xBF\xBDhrer");
  g_free(d);
  /* special tokens are kept unless skipped; unknown ids are dropped */
  int32_t with_bos[] = { 100000, 17464, -5, 999999 };
  d = tokenizer_decode(tok, with_bos, 4, FALSE);
  g_assert_cmpstr(d, ==, "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>Hello");
  g_free(d);
  d = tokenizer_decode(tok, with_bos, 4, TRUE);
  g_assert_cmpstr(d, ==, "Hello");
  g_free(d);
}

static const char *utf8_of_byte(guint8 b, char buf[8])
{
  gboolean self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
  guint extra = 0;
  for (guint x = 0; x < b; x++)
    if (!((x >= 33 && x <= 126) || (x >= 161 && x <= 172) || x >= 174))
      extra++;
  buf[g_unichar_to_utf8(self ? b : 256 + extra, buf)] = 0;
  return buf;
}

/* Rust String::from_utf8_lossy: one U+FFFD per maximal ill-formed subpart. */
static void test_decode_lossy(void)
{
  static const struct { const char *bytes; const char *want; } v[] = {
    { "\xC3\xA9", "\xC3\xA9" },
    { "\xE2\x82" "A", "\xEF\xBF\xBD" "A" },
    { "\xF0\x9F\x98", "\xEF\xBF\xBD" },
    { "\xF0\x9F\x98\x81", "\xF0\x9F\x98\x81" },
    { "\xE0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD" },
    { "\xED\xA0\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
    { "\xF4\x90\x80\x80", "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD" },
    { "\xC0\xAF", "\xEF\xBF\xBD\xEF\xBF\xBD" },
    { "\xFF" "a\x80", "\xEF\xBF\xBD" "a\xEF\xBF\xBD" },
    { "\xC3", "\xEF\xBF\xBD" },
  };
  JfTokenizer *tok = deepseek();
  for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    for (const guint8 *p = (const guint8 *)v[i].bytes; *p; p++) {
      char buf[8];
      int32_t id = tokenizer_token_id(tok, utf8_of_byte(*p, buf));
      g_assert_cmpint(id, >=, 0);
      gsize len;
      const char *raw = tokenizer_token_bytes(tok, id, &len);
      g_assert_cmpuint(len, ==, 1);
      g_assert_cmpint((guint8)raw[0], ==, *p);
      g_array_append_val(ids, id);
    }
    char *d = tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, FALSE);
    g_assert_cmpstr(d, ==, v[i].want);
    g_free(d);
    g_array_free(ids, TRUE);
  }
  gsize len = 99;
  g_assert_null(tokenizer_token_bytes(tok, 100016, &len));
  g_assert_cmpuint(len, ==, 0);
  const char *b = tokenizer_token_bytes(tok, 207, &len);
  g_assert_cmpuint(len, ==, 1);
  g_assert_cmpint(b[0], ==, ' ');
}

static void test_invalid_utf8(void)
{
  static const char *bad[] = { "\xFF", "abc\xC3", "a\xED\xA0\x80" "b", "\xC0\xAF", "\xF4\x90\x80\x80", "x\x80" };
  JfTokenizer *tok = deepseek();
  GArray *out = g_array_new(FALSE, FALSE, sizeof(int32_t));
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    GError *error = NULL;
    g_assert_false(tokenizer_encode(tok, bad[i], -1, TRUE, out, &error));
    g_assert_error(error, G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE);
    g_assert_cmpuint(out->len, ==, 0);
    g_error_free(error);
  }
  /* U+0000 is a character like any other when the length is given */
  g_assert_true(tokenizer_encode(tok, "a\0b", 3, FALSE, out, NULL));
  g_assert_cmpuint(out->len, >=, 3);
  char *d = tokenizer_decode(tok, (const int32_t *)out->data, out->len, FALSE);
  g_assert_cmpmem(d, 1, "a", 1);
  g_free(d);
  g_array_free(out, TRUE);
}

/* Random code points from every plane: decode(encode(s)) == s, except for the 13 added
 * one-character tokens whose decoding is HF's lossy quirk. Also random bytes never crash. */
static void test_random_roundtrip(void)
{
  JfTokenizer *tok = deepseek();
  GRand *rng = g_rand_new_with_seed(1234);
  const gunichar quirky[] = { 0xF8, 0xF6, 0xFA, 0xFF, 0xF5, 0xF7, 0xFB, 0xFD, 0xC0, 0xF9, 0xC1, 0xFE, 0xFC };
  for (int iter = 0; iter < 300; iter++) {
    GString *s = g_string_new(NULL);
    int n = g_rand_int_range(rng, 0, 60);
    for (int k = 0; k < n; k++) {
      gunichar c;
      int kind = g_rand_int_range(rng, 0, 6);
      if (kind == 0) c = (gunichar)g_rand_int_range(rng, 0, 0x80);
      else if (kind == 1) c = (gunichar)g_rand_int_range(rng, 0x80, 0x800);
      else if (kind == 2) c = (gunichar)g_rand_int_range(rng, 0x800, 0x10000);
      else if (kind == 3) c = (gunichar)g_rand_int_range(rng, 0x10000, 0x110000);
      else if (kind == 4) c = " \t\n\r\xA0"[g_rand_int_range(rng, 0, 5)] & 0xFF;
      else c = (gunichar)g_rand_int_range(rng, '0', '9' + 1);
      if (c == 0 || (c >= 0xD800 && c <= 0xDFFF)) /* NUL: decode returns a C string */
        continue;
      gboolean skip = FALSE;
      for (gsize q = 0; q < G_N_ELEMENTS(quirky); q++)
        skip |= (c == quirky[q]);
      if (!skip)
        g_string_append_unichar(s, c);
    }
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    GError *error = NULL;
    g_assert_true(tokenizer_encode(tok, s->str, (gssize)s->len, FALSE, ids, &error));
    g_assert_no_error(error);
    char *d = tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, FALSE);
    g_assert_cmpmem(d, strlen(d), s->str, s->len);
    g_free(d);
    g_array_free(ids, TRUE);
    g_string_free(s, TRUE);
  }
  for (int iter = 0; iter < 2000; iter++) {
    guint8 buf[64];
    int n = g_rand_int_range(rng, 0, sizeof buf);
    for (int k = 0; k < n; k++)
      buf[k] = (guint8)g_rand_int_range(rng, 0, 256);
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
    GError *error = NULL;
    if (!tokenizer_encode(tok, (const char *)buf, n, iter & 1, ids, &error))
      g_assert_error(error, G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE);
    g_clear_error(&error);
    g_free(tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, iter & 2));
    g_array_free(ids, TRUE);
  }
  g_rand_free(rng);
}

static void test_speed(void)
{
  JfTokenizer *tok = deepseek();
  char *path = test_data_path("tokenizer-deepseek-llm/cases.jsonl");
  GPtrArray *cases = read_jsonl(path);
  GString *text = g_string_new(NULL);
  for (guint i = 0; text->len < 10000; i = (i + 1) % cases->len)
    g_string_append(text, json_object_get_string_member(case_obj(cases, i), "text"));
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  gint64 t0 = g_get_monotonic_time();
  g_assert_true(tokenizer_encode(tok, text->str, (gssize)text->len, TRUE, ids, NULL));
  double ms = (g_get_monotonic_time() - t0) / 1000.0;
  g_test_message("encoded %" G_GSIZE_FORMAT " bytes into %u ids in %.2f ms", text->len, ids->len, ms);
  g_assert_cmpfloat(ms, <, 1000.0);

  /* long runs of one kind of character stay fast (no quadratic regex or BPE behaviour) */
  static const char *units[] = { " ", "a", "7", "\xE4\xB8\x80", "\n", "!", "\xC2\xA0" };
  for (gsize u = 0; u < G_N_ELEMENTS(units); u++) {
    GString *run = g_string_new(NULL);
    while (run->len < 200000)
      g_string_append(run, units[u]);
    g_string_append(run, "x ");
    g_array_set_size(ids, 0);
    t0 = g_get_monotonic_time();
    g_assert_true(tokenizer_encode(tok, run->str, (gssize)run->len, FALSE, ids, NULL));
    ms = (g_get_monotonic_time() - t0) / 1000.0;
    g_test_message("200 kB run of unit %" G_GSIZE_FORMAT ": %u ids in %.1f ms", u, ids->len, ms);
    g_assert_cmpfloat(ms, <, 5000.0);
    g_string_free(run, TRUE);
  }
  g_array_free(ids, TRUE);
  g_string_free(text, TRUE);
  g_ptr_array_free(cases, TRUE);
  g_free(path);
}

/* ---- tiny fixture ---- */

static void test_tiny_cases(void)
{
  char *path = tiny_path();
  GError *error = NULL;
  JfTokenizer *tok = tokenizer_load(path, &error);
  g_assert_no_error(error);
  g_assert_cmpint(tokenizer_n_ids(tok), ==, 599);
  g_assert_cmpint(tokenizer_bos_id(tok), ==, 596);
  /* VLChatProcessor's construction-time additions, in its order */
  g_assert_cmpint(tokenizer_add_special(tok, "<image_placeholder>"), ==, 599);
  g_assert_cmpint(tokenizer_add_special(tok, "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81generation\xEF\xBD\x9C>"), ==, 598);
  g_assert_cmpint(tokenizer_add_special(tok, "<image_beg>"), ==, 600);
  g_assert_cmpint(tokenizer_add_special(tok, "<image_end>"), ==, 601);
  g_assert_cmpint(tokenizer_add_special(tok, "<image_placeholder>"), ==, 599); /* idempotent */
  g_assert_cmpint(tokenizer_add_special(tok, "he"), ==, tokenizer_token_id(tok, "he")); /* in the vocab */
  g_assert_cmpint(tokenizer_add_special(tok, ""), ==, -1);
  g_assert_cmpint(tokenizer_add_special(tok, "\xFF"), ==, -1);
  g_assert_cmpint(tokenizer_n_ids(tok), ==, 602);
  g_assert_true(tokenizer_is_special(tok, 601));
  g_assert_cmpint(tokenizer_token_id(tok, "<image_end>"), ==, 601);

  char *cases_path = tiny_cases_path();
  JsonParser *p = json_parser_new();
  g_assert_true(json_parser_load_from_file(p, cases_path, &error));
  g_assert_no_error(error);
  JsonArray *cases = json_object_get_array_member(json_node_get_object(json_parser_get_root(p)), "cases");
  g_assert_cmpuint(json_array_get_length(cases), >=, 30);
  const char *bos = "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>";
  for (guint i = 0; i < json_array_get_length(cases); i++) {
    JsonObject *c = json_array_get_object_element(cases, i);
    const char *text = json_object_get_string_member(c, "text");
    GArray *want = ids_of(json_object_get_array_member(c, "ids"));
    GArray *got = g_array_new(FALSE, FALSE, sizeof(int32_t));
    g_assert_true(tokenizer_encode(tok, text, -1, TRUE, got, &error));
    g_assert_no_error(error);
    assert_ids(text, got, want);
    JsonArray *tokens = json_object_get_array_member(c, "tokens");
    for (guint k = 0; tokens && k < json_array_get_length(tokens); k++)
      g_assert_cmpint(tokenizer_token_id(tok, json_array_get_string_element(tokens, k)), ==,
                      g_array_index(want, int32_t, k));
    char *d = tokenizer_decode(tok, (const int32_t *)got->data, got->len, FALSE);
    char *full = g_strconcat(bos, text, NULL);
    g_assert_cmpstr(d, ==, full);
    g_free(full);
    g_free(d);
    g_array_free(got, TRUE);
    g_array_free(want, TRUE);
  }
  g_object_unref(p);
  g_free(cases_path);
  tokenizer_free(tok);
  g_free(path);
}

/* ---- regex engine ---- */

static char *find_str(const char *pattern, const char *subject)
{
  GError *error = NULL;
  TokRegex *re = tokregex_new(pattern, -1, &error);
  g_assert_no_error(error);
  glong n;
  gunichar *cps = g_utf8_to_ucs4_fast(subject, -1, &n);
  GArray *m = g_array_new(FALSE, FALSE, sizeof(TokRegexMatch));
  tokregex_find_all(re, cps, (gsize)n, m);
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < m->len; i++) {
    TokRegexMatch x = g_array_index(m, TokRegexMatch, i);
    g_string_append_printf(s, "%s%" G_GSIZE_FORMAT "-%" G_GSIZE_FORMAT, i ? " " : "", x.start, x.end);
  }
  g_array_free(m, TRUE);
  g_free(cps);
  tokregex_free(re);
  return g_string_free(s, FALSE);
}

static void test_regex(void)
{
  static const struct { const char *pat, *subject, *want; } v[] = {
    { "[\r\n]", "a\r\nb\n", "1-2 2-3 4-5" },
    { "\\s?[A-Za-z]+", " ab cd!e", "0-3 3-6 7-8" },
    { "\\s?[!-/:-~]+", "a, b", "0-2 2-4" },
    { "\\s+$", "a  ", "1-3" },
    { "\\s+$", "  a", "" },
    { "\\s+$", " \nb", "0-1" }, /* Ruby '$': also before LF */
    { "\\p{N}+", "a\xE0\xA5\xA7\xE0\xA5\xA8" "3x\xC2\xBD", "1-4 5-6" },
    { "\\P{N}", "1a", "1-2" },
    { "[^a-c]+", "abxyzc", "2-5" },
    { "a|ab", "ab", "0-1" },
    { "(?:ab|a)c", "xabcac", "1-4 4-6" },
    { "x{2,3}", "xxxxx", "0-3 3-5" },
    { "x{2}", "xxxxx", "0-2 2-4" },
    { "a*?b", "aab", "0-3" },
    { "a??b", "ab", "0-2" },
    { "a*", "baa", "1-3" }, /* empty matches are skipped */
    { "\\x41\\u0042\\x{43}", "ABC", "0-3" },
    { "[\\-\\]a]+", "x-]a", "1-4" },
    { "[a-]+", "-a-", "0-3" },
    { "^a", "a\na", "0-1 2-3" },
    { "\\Aa", "aa", "0-1" },
    { "a\\z", "aa", "1-2" },
    { ".+", "ab\ncd", "0-2 3-5" },
    { "\\.\\*", "a.*", "1-3" },
    { "[\xF0\x90\x90\x80-\xF0\x90\x91\x8F]", "\xF0\x90\x90\x81", "0-1" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(v); i++) {
    char *got = find_str(v[i].pat, v[i].subject);
    if (strcmp(got, v[i].want) != 0)
      g_test_message("pattern %s", v[i].pat);
    g_assert_cmpstr(got, ==, v[i].want);
    g_free(got);
  }
  static const char *unsupported[] = {
    "\\d", "\\w", "(?=a)", "(?!a)", "(?i)a", "a++", "[[:alpha:]]", "[a&&b]", "\\1", "[]a]", "a{2",
    "(a", "a)", "*a", "\\p{L}", "[z-a]", "\\", "[abc", "a**", "a{5,2}", "x{1000}",
    "(a*)*", "(?:a?)+", "(?:a|)*", "(?:$)*", "(?:a*b?){2}",
  };
  for (gsize i = 0; i < G_N_ELEMENTS(unsupported); i++) {
    GError *error = NULL;
    TokRegex *re = tokregex_new(unsupported[i], -1, &error);
    if (re)
      g_test_message("pattern %s compiled", unsupported[i]);
    g_assert_null(re);
    g_assert_error(error, G_REGEX_ERROR, G_REGEX_ERROR_COMPILE);
    g_error_free(error);
  }
  /* nested unbounded loops stay linear */
  GString *as = g_string_new(NULL);
  for (int i = 0; i < 20000; i++)
    g_string_append_c(as, 'a');
  gint64 t0 = g_get_monotonic_time();
  char *got = find_str("(?:a+)+b", as->str); /* exponential for a plain backtracker */
  g_assert_cmpstr(got, ==, "");
  g_free(got);
  got = find_str("(?:a|aa)*c", as->str);
  g_assert_cmpstr(got, ==, "");
  g_free(got);
  got = find_str("\\s+$", "  x  ");
  g_assert_cmpstr(got, ==, "3-5");
  g_free(got);
  g_assert_cmpint(g_get_monotonic_time() - t0, <, 5 * G_USEC_PER_SEC);
  g_string_free(as, TRUE);
}

/* ---- malformed files ---- */

static const char *MINIMAL =
  "{\"added_tokens\": [{\"id\": 5, \"content\": \"<s>\", \"special\": true}],"
  " \"normalizer\": null,"
  " \"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": ["
  "   {\"type\": \"Split\", \"pattern\": {\"Regex\": \"%s\"}, \"behavior\": \"Isolated\", \"invert\": false},"
  "   {\"type\": \"ByteLevel\", \"add_prefix_space\": false, \"use_regex\": false}]},"
  " \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": \"<s>\"}},"
  "   {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": {\"id\": \"<s>\", \"ids\": [5]}}},"
  " \"decoder\": {\"type\": \"ByteLevel\"},"
  " \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2, \"\xC4\xA0\": 3, \"\xC4\xA0" "ab\": 4},"
  "   \"merges\": [%s]}}";

static JfTokenizer *load_text(const char *text, GError **error)
{
  char *path = NULL;
  int fd = g_file_open_tmp("tok-XXXXXX.json", &path, NULL);
  g_assert_cmpint(fd, >=, 0);
  close(fd);
  g_assert_true(g_file_set_contents(path, text, -1, NULL));
  JfTokenizer *tok = tokenizer_load(path, error);
  if (error && *error)
    g_assert_nonnull(strstr((*error)->message, path)); /* messages name the file */
  g_unlink(path);
  g_free(path);
  return tok;
}

static JfTokenizer *load_minimal(const char *regex, const char *merges, GError **error)
{
  char *text = g_strdup_printf(MINIMAL, regex, merges);
  JfTokenizer *tok = load_text(text, error);
  g_free(text);
  return tok;
}

static void test_minimal_file(void)
{
  GError *error = NULL;
  JfTokenizer *tok = load_minimal("\\\\s?[a-z]+", "\"a b\", [\"\xC4\xA0\", \"ab\"]", &error);
  g_assert_no_error(error);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  g_assert_true(tokenizer_encode(tok, "ab ab<s>b", -1, TRUE, ids, NULL));
  char *s = ids_str(ids);
  g_assert_cmpstr(s, ==, "5 2 4 5 1");
  g_free(s);
  /* characters missing from the vocabulary are dropped (no unk token), as in HF */
  g_array_set_size(ids, 0);
  g_assert_true(tokenizer_encode(tok, "azb", -1, FALSE, ids, NULL));
  s = ids_str(ids);
  g_assert_cmpstr(s, ==, "2");
  g_free(s);
  g_array_free(ids, TRUE);
  tokenizer_free(tok);
}

static void test_malformed(void)
{
  static const struct { const char *text; int code; } files[] = {
    { "", JF_LOAD_ERROR_FORMAT },
    { "not json {", JF_LOAD_ERROR_FORMAT },
    { "[1, 2]", JF_LOAD_ERROR_FORMAT },
    { "{}", JF_LOAD_ERROR_MISSING },
    { "{\"model\": 3}", JF_LOAD_ERROR_MISSING },
    { "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": []}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": -1}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": \"0\"}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 99999999999}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 0}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": {}}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": \"a a\"}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"aa\"]}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [7]}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [[\"a\"]]}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": [\"a a\"]}}", JF_LOAD_ERROR_FORMAT },
    { "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, \"merges\": []}}", JF_LOAD_ERROR_FORMAT }, /* no pre_tokenizer */
  };
  for (gsize i = 0; i < G_N_ELEMENTS(files); i++) {
    GError *error = NULL;
    JfTokenizer *tok = load_text(files[i].text, &error);
    if (tok)
      g_test_message("file %" G_GSIZE_FORMAT " loaded", i);
    g_assert_null(tok);
    g_assert_error(error, JF_LOAD_ERROR, files[i].code);
    g_error_free(error);
  }
  /* unsupported regex constructs and bad merges in an otherwise valid file */
  static const struct { const char *regex, *merges; } bad[] = {
    { "\\\\d+", "\"a b\"" },
    { "(?=a)", "\"a b\"" },
    { "[a-z", "\"a b\"" },
    { "a", "\"a c\"" },
    { "a", "\"a\"" },
    { "a", "\"b a\"" }, /* "ba" is not in the vocabulary */
    { "a", "null, 3" },
  };
  for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
    GError *error = NULL;
    JfTokenizer *tok = load_minimal(bad[i].regex, bad[i].merges, &error);
    g_assert_null(tok);
    g_assert_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT);
    g_test_message("%s", error->message);
    g_error_free(error);
  }
  /* deep nesting is refused before json-glib recurses into it */
  GString *deep = g_string_new(NULL);
  for (int i = 0; i < 100000; i++)
    g_string_append_c(deep, '[');
  GError *error = NULL;
  g_assert_null(load_text(deep->str, &error));
  g_assert_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT);
  g_clear_error(&error);
  g_string_free(deep, TRUE);
  /* missing file, a directory */
  g_assert_null(tokenizer_load("/nonexistent/tokenizer.json", &error));
  g_assert_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO);
  g_clear_error(&error);
  g_assert_null(tokenizer_load(g_get_tmp_dir(), &error));
  g_assert_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO);
  g_clear_error(&error);
  /* the real file cut short at many places */
  char *path = deepseek_path(), *data = NULL;
  gsize len = 0;
  g_assert_true(g_file_get_contents(path, &data, &len, NULL));
  static const double cuts[] = { 0.0001, 0.01, 0.3, 0.9, 0.99999 };
  for (gsize i = 0; i < G_N_ELEMENTS(cuts); i++) {
    char *cut = g_strndup(data, (gsize)(len * cuts[i]));
    g_assert_null(load_text(cut, &error));
    g_assert_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT);
    g_clear_error(&error);
    g_free(cut);
  }
  g_free(data);
  g_free(path);
}

/* ---- the janusflow tokenize command ---- */

static int run_cli(const char *const *argv, char **out, char **err)
{
  GError *error = NULL;
  int status = 0;
  g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &error));
  g_assert_no_error(error);
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  return -1;
}

static const char *cli_exe(void)
{
  const char *exe = g_getenv("JF_JANUSFLOW");
  if (!exe || !g_file_test(exe, G_FILE_TEST_IS_EXECUTABLE)) {
    char *msg = g_strdup_printf("JF_JANUSFLOW (%s) is not the built janusflow executable", exe ? exe : "unset");
    g_test_skip(msg);
    g_free(msg);
    return NULL;
  }
  return exe;
}

static void test_cli_cases(void)
{
  const char *exe = cli_exe();
  if (!exe)
    return;
  char *tpath = deepseek_path(), *path = test_data_path("tokenizer-deepseek-llm/cases.jsonl");
  GPtrArray *cases = read_jsonl(path);
  /* Every case is checked in-process by /tokenizer/deepseek/cases through the same encoder; here
   * only the command line's handling matters (arguments, UTF-8, output), so a spread of the cases
   * is enough: each run loads the 102400-token vocabulary again (seconds under ASan). */
  for (guint i = 0; i < cases->len; i += 7) {
    JsonObject *c = case_obj(cases, i);
    const char *text = json_object_get_string_member(c, "text");
    gboolean bos = json_object_get_boolean_member(c, "with_bos");
    const char *argv[9];
    int k = 0;
    argv[k++] = exe;
    argv[k++] = "tokenize";
    argv[k++] = "--tokenizer";
    argv[k++] = tpath;
    if (bos)
      argv[k++] = "--bos";
    argv[k++] = "--text";
    argv[k++] = text;
    argv[k] = NULL;
    char *out = NULL, *err = NULL;
    int rc = run_cli(argv, &out, &err);
    if (rc != 0)
      g_test_message("stderr: %s", err);
    g_assert_cmpint(rc, ==, 0);
    GArray *want = ids_of(json_object_get_array_member(c, "ids"));
    char *w = ids_str(want), *wl = g_strconcat(w, "\n", NULL);
    g_assert_cmpstr(out, ==, wl);
    g_free(w);
    g_free(wl);
    g_array_free(want, TRUE);
    g_free(out);
    g_free(err);
  }
  g_ptr_array_free(cases, TRUE);
  g_free(path);
  g_free(tpath);
}

static void test_cli_misc(void)
{
  const char *exe = cli_exe();
  if (!exe)
    return;
  char *tpath = deepseek_path(), *out = NULL, *err = NULL;
  /* text that looks like an option, and decoding */
  const char *a1[] = { exe, "tokenize", "--tokenizer", tpath, "--text", "-3 --bos", NULL };
  g_assert_cmpint(run_cli(a1, &out, &err), ==, 0);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  g_assert_true(tokenizer_encode(deepseek(), "-3 --bos", -1, FALSE, ids, NULL));
  char *want = ids_str(ids), *wl = g_strconcat(want, "\n", NULL);
  g_assert_cmpstr(out, ==, wl);
  g_free(wl);
  g_free(want);
  g_array_free(ids, TRUE);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  const char *a2[] = { exe, "tokenize", "--tokenizer", tpath, "--decode", "--ids", "100000 17464 11, 946", NULL };
  g_assert_cmpint(run_cli(a2, &out, &err), ==, 0);
  g_assert_cmpstr(out, ==, "<\xEF\xBD\x9C" "begin\xE2\x96\x81of\xE2\x96\x81sentence\xEF\xBD\x9C>Hello, how\n");
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  const char *a3[] = { exe, "tokenize", "--tokenizer", tpath, "--decode", "--skip-special", "--ids", "100000 17464", NULL };
  g_assert_cmpint(run_cli(a3, &out, &err), ==, 0);
  g_assert_cmpstr(out, ==, "Hello\n");
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  /* errors: exit 2, a message naming the file */
  const char *e1[] = { exe, "tokenize", "--tokenizer", "/nonexistent/tok.json", "--text", "x", NULL };
  g_assert_cmpint(run_cli(e1, &out, &err), ==, 2);
  g_assert_nonnull(strstr(err, "/nonexistent/tok.json"));
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  const char *e2[] = { exe, "tokenize", "--tokenizer", tpath, "--text", "bad \xFF", NULL };
  g_assert_cmpint(run_cli(e2, &out, &err), ==, 2);
  g_assert_nonnull(strstr(err, "UTF-8"));
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  const char *e3[] = { exe, "tokenize", "--text", "x", NULL };
  g_assert_cmpint(run_cli(e3, &out, &err), ==, 2);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  const char *e4[] = { exe, "tokenize", "--tokenizer", tpath, "--decode", "--ids", "1 x", NULL };
  g_assert_cmpint(run_cli(e4, &out, &err), ==, 2);
  g_clear_pointer(&out, g_free);
  g_clear_pointer(&err, g_free);
  g_free(tpath);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/tokenizer/regex", test_regex);
  g_test_add_func("/tokenizer/minimal-file", test_minimal_file);
  g_test_add_func("/tokenizer/malformed", test_malformed);
  g_test_add_func("/tokenizer/deepseek/ids", test_deepseek_ids);
  g_test_add_func("/tokenizer/deepseek/spec-vectors", test_deepseek_spec_vectors);
  g_test_add_func("/tokenizer/deepseek/cases", test_deepseek_cases);
  g_test_add_func("/tokenizer/deepseek/decode-lossy", test_decode_lossy);
  g_test_add_func("/tokenizer/deepseek/invalid-utf8", test_invalid_utf8);
  g_test_add_func("/tokenizer/deepseek/random-roundtrip", test_random_roundtrip);
  g_test_add_func("/tokenizer/deepseek/speed", test_speed);
  g_test_add_func("/tokenizer/tiny/cases", test_tiny_cases);
  g_test_add_func("/tokenizer/cli/cases", test_cli_cases);
  g_test_add_func("/tokenizer/cli/misc", test_cli_misc);
  int rc = g_test_run();
  return rc;
}
