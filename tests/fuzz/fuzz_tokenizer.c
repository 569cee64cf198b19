/* The tokenizer both ways round. First byte even: the rest is text for the real DeepSeek-LLM
 * tokenizer (loaded once): encode (with BOS when bit 1 is set), decode the ids back, look up
 * every token's bytes; valid UTF-8 without special tokens must round-trip exactly. First byte
 * odd: the rest is a tokenizer.json to load; whatever loads must then encode and decode. */
#include "fuzz_common.h"
#include "tokenizer.h"

/* DeepSeek-LLM's added tokens start here. Besides the special ones they include single Latin-1
 * letters such as "ö" which HF's ByteLevel decoder turns into one lone byte (U+FFFD), so text
 * holding them does not round-trip in HF either (see tests/data/tokenizer-deepseek-llm/cases.jsonl). */
#define DEEPSEEK_FIRST_ADDED_ID 100000

static JfTokenizer *real;
static FuzzFile file;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
  (void)argc;
  (void)argv;
  fuzz_strict_logging();
  fuzz_file_init(&file, "tokenizer.json");
  char *path = g_build_filename(fuzz_data_dir(), "tokenizer-deepseek-llm", "tokenizer.json", NULL);
  GError *error = NULL;
  real = tokenizer_load(path, &error);
  if (!real) {
    fprintf(stderr, "fuzz_tokenizer: %s (set JF_FUZZ_DATA to tests/data)\n", error->message);
    abort();
  }
  g_free(path);
  return 0;
}

static void exercise(JfTokenizer *tok, const char *text, gsize len, gboolean bos, gboolean check_roundtrip)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  GError *error = NULL;
  if (!tokenizer_encode(tok, text, (gssize)len, bos, ids, &error)) {
    /* only invalid UTF-8 (or the size limit) may refuse text */
    FUZZ_CHECK(!g_utf8_validate_len(text, len, NULL) || len > (4u << 20));
    g_error_free(error);
    g_array_unref(ids);
    return;
  }
  int32_t n = tokenizer_n_ids(tok);
  gboolean any_added = FALSE;
  for (guint i = 0; i < ids->len; i++) {
    int32_t id = g_array_index(ids, int32_t, i);
    FUZZ_CHECK(id >= 0 && id < n);
    gsize bl = 0;
    (void)tokenizer_token_bytes(tok, id, &bl);
    any_added |= tokenizer_is_special(tok, id) || id >= DEEPSEEK_FIRST_ADDED_ID;
  }
  char *back = tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, FALSE);
  char *plain = tokenizer_decode(tok, (const int32_t *)ids->data, ids->len, TRUE);
  FUZZ_CHECK(g_utf8_validate(back, -1, NULL) && g_utf8_validate(plain, -1, NULL));
  /* byte-level BPE loses nothing: ids decode to the text (no BOS, no added tokens) */
  gboolean same = strlen(back) == len && memcmp(back, text, len) == 0;
  if (check_roundtrip && !bos && !any_added && !memchr(text, 0, len) && !same) {
    fprintf(stderr, "round trip: '%.*s' came back as '%s'\n", (int)len, text, back);
    FUZZ_CHECK(!"ids decode to the text");
  }
  g_free(back);
  g_free(plain);
  g_array_unref(ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
  if (size < 1)
    return 0;
  const char *text = (const char *)data + 1;
  gsize len = size - 1;
  if (!(data[0] & 1)) {
    exercise(real, text, len, (data[0] & 2) != 0, TRUE);
    /* unknown ids decode to nothing rather than reading out of bounds */
    int32_t odd[] = {-1, INT32_MAX, tokenizer_n_ids(real), 0};
    char *s = tokenizer_decode(real, odd, G_N_ELEMENTS(odd), FALSE);
    g_free(s);
    return 0;
  }
  fuzz_file_set(&file, data + 1, size - 1);
  GError *error = NULL;
  JfTokenizer *tok = tokenizer_load(file.path, &error);
  if (!tok) {
    FUZZ_CHECK(error && strstr(error->message, file.path));
    g_error_free(error);
    return 0;
  }
  static const char *samples[] = {"Hello, world! 123 4567", "  spaces\tand\nnewlines  ", "<image_placeholder>x",
                                  "\xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x98\x80", ""};
  for (guint i = 0; i < G_N_ELEMENTS(samples); i++)
    exercise(tok, samples[i], strlen(samples[i]), i & 1, FALSE);
  exercise(tok, text, MIN(len, 256), FALSE, FALSE);
  (void)tokenizer_add_special(tok, "<fuzz_tag>");
  (void)tokenizer_add_special(tok, "<fuzz_tag>");
  exercise(tok, "a<fuzz_tag>b", 12, TRUE, FALSE);
  (void)tokenizer_bos_id(tok);
  (void)tokenizer_token_id(tok, "a");
  tokenizer_free(tok);
  return 0;
}
