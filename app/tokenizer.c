/* tokenizer: HF tokenizer.json, byte-level BPE (the DeepSeek-LLM flavour JanusFlow uses).
 *
 * Pipeline of tokenizer_encode, in HF tokenizers' order:
 *   1. added tokens are cut out of the raw text, leftmost-longest: first those with
 *      normalized=false, then (in what is left) those with normalized=true. The normalizer must
 *      be empty, so both passes see the raw text.
 *   2. every other segment goes through the pre-tokenizer steps in file order (Split with a
 *      regex or string pattern, Digits); each step splits every piece the previous step made.
 *   3. ByteLevel (last step): each piece's bytes become GPT-2 alphabet characters, and the BPE
 *      model merges adjacent symbols by lowest merge rank (ties: leftmost), like HF's merge_word.
 *   4. with add_bos, the post-processor's template ("BOS $A") wraps the ids.
 * Anything in the file outside what this implements (other normalizers, pre-tokenizers, models,
 * decoders, regex constructs, options) is refused at load time with an error naming the file
 * and the field, rather than silently encoding differently from HF.
 *
 * Limits (bad or hostile files and inputs get an error, never a crash):
 *   tokenizer.json size            64 MiB (TOK_MAX_FILE_BYTES)
 *   JSON nesting depth             64     (TOK_MAX_JSON_DEPTH; checked before parsing)
 *   token ids                      0 .. 16,777,215 (TOK_MAX_ID - 1), vocabulary and added tokens
 *   vocabulary entries / merges    4,194,304 each (TOK_MAX_VOCAB, TOK_MAX_MERGES)
 *   one token's text               1024 bytes (TOK_MAX_TOKEN_BYTES), vocabulary or added
 *   added tokens                   65,536 (TOK_MAX_ADDED), including tokenizer_add_special ones
 *   pre-tokenizer steps            32 (TOK_MAX_STEPS)
 *   regex pattern                  64 KiB, 256 program instructions, {n,m} counts <= 100
 *                                  (app/tokregex.h)
 *   text given to encode           4 MiB (TOK_MAX_TEXT_BYTES); error JF_LOAD_ERROR_LIMIT
 *   piece cache                    pieces up to 256 bytes, at most 65,536 of them (then the
 *                                  cache is emptied and refilled)
 * Invalid UTF-8 given to encode is an error (G_CONVERT_ERROR_ILLEGAL_SEQUENCE); U+0000 is allowed.
 *
 * Thread safety: encode and add_special lock the tokenizer; decode, token_bytes and the lookups
 * only read it, so they may run alongside encode but not alongside add_special. */
#include "tokenizer.h"
#include "json_guard.h"
#include "safetensors.h" /* JF_LOAD_ERROR */
#include "tokregex.h"
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#define TOK_MAX_FILE_BYTES ((gsize)64 << 20)
#define TOK_MAX_JSON_DEPTH 64
#define TOK_MAX_ID (1 << 24)
#define TOK_MAX_VOCAB (1 << 22)
#define TOK_MAX_MERGES (1 << 22)
#define TOK_MAX_TOKEN_BYTES 1024
#define TOK_MAX_ADDED 65536
#define TOK_MAX_STEPS 32
#define TOK_MAX_TEXT_BYTES ((gsize)4 << 20)
#define TOK_CACHE_MAX_PIECE 256
#define TOK_CACHE_MAX_ENTRIES 65536

typedef struct {
  const char *content; /* in tok->strings */
  gsize len;
  int32_t id;
  gboolean special, normalized, lstrip, rstrip;
} AddedToken;

typedef struct {
  const char *str;   /* the token as written in the file (NULL: no token has this id) */
  const char *bytes; /* what the ByteLevel decoder turns it into */
  uint32_t bytes_len;
  gboolean special;
} IdEntry;

typedef struct {
  uint64_t key; /* (a << 32) | b; MERGE_EMPTY when free */
  int32_t rank, new_id;
} MergeSlot;
#define MERGE_EMPTY UINT64_MAX

typedef struct {
  TokRegex *re;
  gboolean removed; /* behavior Removed (else Isolated) */
  gboolean invert;
} Step;

typedef struct {
  gsize start, end; /* byte offsets */
} Span;

struct JfTokenizer {
  char *path;
  GStringChunk *strings;
  IdEntry *ids;
  int32_t n_ids; /* largest id + 1 */
  int32_t ids_alloc;
  GHashTable *vocab; /* token string -> id + 1 (keys in strings) */
  gsize vocab_count;
  MergeSlot *merges;
  gsize merges_mask; /* capacity - 1, capacity a power of two */
  int32_t byte_id[256];
  int32_t unk_id;
  gboolean fuse_unk, ignore_merges;
  GArray *added;         /* AddedToken */
  GHashTable *added_map; /* content -> index in added + 1 */
  GPtrArray *steps;      /* Step*, ByteLevel excluded (always last) */
  GArray *prefix_ids, *suffix_ids; /* the post-processor template around $A */
  int32_t bos_id;
  GMutex lock;
  GHashTable *cache; /* GBytes piece -> GBytes of int32 ids */
};

/* ---- GPT-2 byte alphabet ---- */

static uint32_t byte_to_cp[256];
static int16_t cp_to_byte[512]; /* -1: not in the alphabet; every mapped code point is < 324 */

static void byte_tables_init(void)
{
  static gsize done = 0;
  if (g_once_init_enter(&done)) {
    for (int i = 0; i < 512; i++)
      cp_to_byte[i] = -1;
    uint32_t extra = 0;
    for (int b = 0; b < 256; b++) {
      gboolean self = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      byte_to_cp[b] = self ? (uint32_t)b : 256 + extra++;
      cp_to_byte[byte_to_cp[b]] = (int16_t)b;
    }
    g_once_init_leave(&done, 1);
  }
}

/* ---- UTF-8 ---- */

/* Decodes the sequence at s[0..n), n >= 1. Returns its length (1..4) with *cp, or 0 when it is
 * ill-formed; then *bad is the length of its maximal ill-formed subpart (1..3), the unit that
 * Rust's String::from_utf8_lossy replaces with one U+FFFD. */
static int utf8_next(const uint8_t *s, gsize n, uint32_t *cp, gsize *bad)
{
  uint8_t b0 = s[0];
  if (b0 < 0x80) {
    *cp = b0;
    return 1;
  }
  int need;
  uint8_t lo = 0x80, hi = 0xBF;
  uint32_t v;
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    need = 1;
    v = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    need = 2;
    v = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;
    if (b0 == 0xED) hi = 0x9F; /* no surrogates */
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    need = 3;
    v = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F; /* <= U+10FFFF */
  } else {
    *bad = 1;
    return 0;
  }
  for (int k = 1; k <= need; k++) {
    if ((gsize)k >= n) {
      *bad = (gsize)k;
      return 0;
    }
    uint8_t c = s[k];
    if (c < (k == 1 ? lo : 0x80) || c > (k == 1 ? hi : 0xBF)) {
      *bad = (gsize)k;
      return 0;
    }
    v = (v << 6) | (c & 0x3F);
  }
  *cp = v;
  return need + 1;
}

/* Byte offset of the first ill-formed sequence, or -1. */
static gssize utf8_find_invalid(const char *s, gsize n)
{
  const uint8_t *u = (const uint8_t *)s;
  gsize i = 0;
  while (i < n) {
    uint32_t cp;
    gsize bad;
    int l = utf8_next(u + i, n - i, &cp, &bad);
    if (!l)
      return (gssize)i;
    i += (gsize)l;
  }
  return -1;
}

static void utf8_append_lossy(GString *out, const uint8_t *s, gsize n)
{
  gsize i = 0;
  while (i < n) {
    uint32_t cp;
    gsize bad;
    int l = utf8_next(s + i, n - i, &cp, &bad);
    if (l) {
      g_string_append_len(out, (const char *)s + i, l);
      i += (gsize)l;
    } else {
      g_string_append(out, "\xEF\xBF\xBD");
      i += bad;
    }
  }
}

/* Code points of a valid UTF-8 span, with the byte offset of each (offs has n + 1 entries). */
static gsize utf8_decode_span(const char *s, gsize len, uint32_t *cps, gsize *offs)
{
  gsize n = 0, i = 0;
  while (i < len) {
    uint32_t cp = 0;
    gsize bad;
    int l = utf8_next((const uint8_t *)s + i, len - i, &cp, &bad);
    if (!l)
      l = 1; /* cannot happen: input was validated */
    cps[n] = cp;
    offs[n++] = i;
    i += (gsize)l;
  }
  offs[n] = len;
  return n;
}

/* ---- merges: open addressing on the id pair ---- */

static uint64_t merge_hash(uint64_t k)
{
  k ^= k >> 33;
  k *= 0xff51afd7ed558ccdULL;
  k ^= k >> 33;
  k *= 0xc4ceb9fe1a85ec53ULL;
  k ^= k >> 33;
  return k;
}

static const MergeSlot *merge_find(const JfTokenizer *tok, int32_t a, int32_t b)
{
  if (!tok->merges)
    return NULL;
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  for (gsize i = merge_hash(key) & tok->merges_mask;; i = (i + 1) & tok->merges_mask) {
    const MergeSlot *s = &tok->merges[i];
    if (s->key == key)
      return s;
    if (s->key == MERGE_EMPTY)
      return NULL;
  }
}

/* A later duplicate replaces the earlier one, as in HF's HashMap built from the merges list. */
static void merge_insert(JfTokenizer *tok, int32_t a, int32_t b, int32_t rank, int32_t new_id)
{
  uint64_t key = ((uint64_t)(uint32_t)a << 32) | (uint32_t)b;
  for (gsize i = merge_hash(key) & tok->merges_mask;; i = (i + 1) & tok->merges_mask) {
    MergeSlot *s = &tok->merges[i];
    if (s->key == key || s->key == MERGE_EMPTY) {
      s->key = key;
      s->rank = rank;
      s->new_id = new_id;
      return;
    }
  }
}

/* ---- id table ---- */

static void ids_reserve(JfTokenizer *tok, int32_t id)
{
  if (id < tok->ids_alloc)
    return;
  int32_t na = tok->ids_alloc ? tok->ids_alloc : 1024;
  while (na <= id)
    na = na > TOK_MAX_ID / 2 ? TOK_MAX_ID : na * 2;
  tok->ids = g_renew(IdEntry, tok->ids, na);
  memset(tok->ids + tok->ids_alloc, 0, (gsize)(na - tok->ids_alloc) * sizeof(IdEntry));
  tok->ids_alloc = na;
}

/* The ByteLevel decoder's view of a token: its characters through the inverse byte table, or
 * its own UTF-8 bytes when any character is outside the alphabet (HF decode_chain). */
static void id_set(JfTokenizer *tok, int32_t id, const char *str, gboolean special)
{
  ids_reserve(tok, id);
  IdEntry *e = &tok->ids[id];
  e->str = str;
  e->special = special;
  gsize len = strlen(str);
  char buf[TOK_MAX_TOKEN_BYTES];
  gsize n = 0;
  gboolean all = TRUE;
  for (const char *p = str; *p; p = g_utf8_next_char(p)) {
    gunichar c = g_utf8_get_char(p);
    if (c >= 512 || cp_to_byte[c] < 0 || n >= sizeof buf) {
      all = FALSE;
      break;
    }
    buf[n++] = (char)cp_to_byte[c];
  }
  if (all) {
    e->bytes = g_string_chunk_insert_len(tok->strings, buf, (gssize)n);
    e->bytes_len = (uint32_t)n;
  } else {
    e->bytes = str;
    e->bytes_len = (uint32_t)len;
  }
  if (id + 1 > tok->n_ids)
    tok->n_ids = id + 1;
}

/* ---- JSON helpers ---- */

static gboolean fail(GError **error, int code, const JfTokenizer *tok, const char *fmt, ...) G_GNUC_PRINTF(4, 5);
static gboolean fail(GError **error, int code, const JfTokenizer *tok, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  g_set_error(error, JF_LOAD_ERROR, code, "%s: %s", tok->path, msg);
  g_free(msg);
  return FALSE;
}

static JsonNode *member(JsonObject *o, const char *name)
{
  return o && json_object_has_member(o, name) ? json_object_get_member(o, name) : NULL;
}

static gboolean node_is_null(JsonNode *n) { return !n || JSON_NODE_HOLDS_NULL(n); }

static JsonObject *as_object(JsonNode *n) { return n && JSON_NODE_HOLDS_OBJECT(n) ? json_node_get_object(n) : NULL; }
static JsonArray *as_array(JsonNode *n) { return n && JSON_NODE_HOLDS_ARRAY(n) ? json_node_get_array(n) : NULL; }

static const char *as_string(JsonNode *n)
{
  return n && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_STRING ? json_node_get_string(n) : NULL;
}

static gboolean as_int(JsonNode *n, gint64 *out)
{
  if (!n || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return FALSE;
  *out = json_node_get_int(n);
  return TRUE;
}

/* Optional boolean member: absent or null gives def; another type is an error. */
static gboolean get_bool(JsonObject *o, const char *name, gboolean def, gboolean *out)
{
  JsonNode *n = member(o, name);
  if (node_is_null(n)) {
    *out = def;
    return TRUE;
  }
  if (!JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_BOOLEAN)
    return FALSE;
  *out = json_node_get_boolean(n);
  return TRUE;
}

static const char *type_of(JsonObject *o)
{
  const char *t = as_string(member(o, "type"));
  return t ? t : "(no type)";
}

/* ---- loading: model ---- */

static gboolean token_text_ok(const char *s)
{
  return s && *s && strlen(s) <= TOK_MAX_TOKEN_BYTES;
}

static gboolean load_vocab(JfTokenizer *tok, JsonObject *model, GError **error)
{
  JsonObject *vocab = as_object(member(model, "vocab"));
  if (!vocab)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.vocab is missing or not an object");
  guint n = json_object_get_size(vocab);
  if (n > TOK_MAX_VOCAB)
    return fail(error, JF_LOAD_ERROR_LIMIT, tok, "model.vocab has %u entries (limit %d)", n, TOK_MAX_VOCAB);
  JsonObjectIter it;
  const char *key;
  JsonNode *val;
  json_object_iter_init(&it, vocab);
  while (json_object_iter_next(&it, &key, &val)) {
    gint64 id;
    if (!as_int(val, &id) || id < 0 || id >= TOK_MAX_ID)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.vocab[\"%.64s\"]: id must be an integer in 0..%d",
                  key, TOK_MAX_ID - 1);
    if (!token_text_ok(key))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.vocab: empty token or token longer than %d bytes",
                  TOK_MAX_TOKEN_BYTES);
    if (id < tok->ids_alloc && tok->ids[id].str)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.vocab: id %" G_GINT64_FORMAT " is used twice", id);
    const char *s = g_string_chunk_insert(tok->strings, key);
    g_hash_table_insert(tok->vocab, (gpointer)s, GINT_TO_POINTER((int)id + 1));
    id_set(tok, (int32_t)id, s, FALSE);
  }
  tok->vocab_count = g_hash_table_size(tok->vocab);
  return TRUE;
}

static int32_t vocab_lookup(const JfTokenizer *tok, const char *s)
{
  gpointer v = g_hash_table_lookup(tok->vocab, s);
  return v ? GPOINTER_TO_INT(v) - 1 : -1;
}

static gboolean load_merges(JfTokenizer *tok, JsonObject *model, GError **error)
{
  JsonNode *mn = member(model, "merges");
  if (node_is_null(mn))
    return TRUE; /* a vocabulary without merges: every byte its own token */
  JsonArray *merges = as_array(mn);
  if (!merges)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.merges is not an array");
  guint n = json_array_get_length(merges);
  if (n > TOK_MAX_MERGES)
    return fail(error, JF_LOAD_ERROR_LIMIT, tok, "model.merges has %u entries (limit %d)", n, TOK_MAX_MERGES);
  gsize cap = 16;
  while (cap < (gsize)n * 2)
    cap *= 2;
  tok->merges = g_new(MergeSlot, cap);
  for (gsize i = 0; i < cap; i++)
    tok->merges[i].key = MERGE_EMPTY;
  tok->merges_mask = cap - 1;
  GString *joined = g_string_new(NULL);
  char *owned = NULL;
  gboolean ok = TRUE;
  for (guint i = 0; i < n && ok; i++) {
    JsonNode *e = json_array_get_element(merges, i);
    const char *a = NULL, *b = NULL, *str;
    JsonArray *pair;
    if ((str = as_string(e))) {
      /* legacy "a b": split at the first space, like HF */
      const char *sp = strchr(str, ' ');
      if (sp) {
        g_free(owned);
        owned = g_strndup(str, (gsize)(sp - str));
        a = owned;
        b = sp + 1;
      }
    } else if ((pair = as_array(e)) && json_array_get_length(pair) == 2) {
      a = as_string(json_array_get_element(pair, 0));
      b = as_string(json_array_get_element(pair, 1));
    }
    if (!a || !b) {
      ok = fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.merges[%u] is not \"a b\" or [\"a\", \"b\"]", i);
      break;
    }
    int32_t ia = vocab_lookup(tok, a), ib = vocab_lookup(tok, b);
    g_string_assign(joined, a);
    g_string_append(joined, b);
    int32_t inew = vocab_lookup(tok, joined->str);
    if (ia < 0 || ib < 0 || inew < 0) {
      const char *missing = ia < 0 ? a : ib < 0 ? b : joined->str;
      ok = fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.merges[%u]: token \"%.64s\" is not in the vocabulary",
                i, missing);
      break;
    }
    merge_insert(tok, ia, ib, (int32_t)i, inew);
  }
  g_free(owned);
  g_string_free(joined, TRUE);
  return ok;
}

static gboolean load_model(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonObject *model = as_object(member(root, "model"));
  if (!model)
    return fail(error, JF_LOAD_ERROR_MISSING, tok, "\"model\" is missing or not an object");
  const char *type = as_string(member(model, "type"));
  if (type && strcmp(type, "BPE") != 0)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.type \"%.64s\" is not supported (only BPE)", type);
  if (!node_is_null(member(model, "continuing_subword_prefix")) || !node_is_null(member(model, "end_of_word_suffix")))
    return fail(error, JF_LOAD_ERROR_FORMAT, tok,
                "model: continuing_subword_prefix / end_of_word_suffix are not supported");
  JsonNode *dropout = member(model, "dropout");
  if (!node_is_null(dropout) &&
      !(JSON_NODE_HOLDS_VALUE(dropout) && json_node_get_value_type(dropout) == G_TYPE_DOUBLE &&
        json_node_get_double(dropout) == 0.0))
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.dropout is not supported (must be null)");
  gboolean byte_fallback;
  if (!get_bool(model, "byte_fallback", FALSE, &byte_fallback) || byte_fallback)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.byte_fallback must be false");
  if (!get_bool(model, "fuse_unk", FALSE, &tok->fuse_unk) ||
      !get_bool(model, "ignore_merges", FALSE, &tok->ignore_merges))
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.fuse_unk / model.ignore_merges must be booleans");
  if (!load_vocab(tok, model, error) || !load_merges(tok, model, error))
    return FALSE;
  JsonNode *unk = member(model, "unk_token");
  tok->unk_id = -1;
  if (!node_is_null(unk)) {
    const char *u = as_string(unk);
    if (!u || (tok->unk_id = vocab_lookup(tok, u)) < 0)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "model.unk_token is not a token of the vocabulary");
  }
  char buf[8];
  for (int b = 0; b < 256; b++) {
    buf[g_unichar_to_utf8(byte_to_cp[b], buf)] = 0;
    tok->byte_id[b] = vocab_lookup(tok, buf);
  }
  return TRUE;
}

/* ---- loading: added tokens, normalizer, pre-tokenizer, post-processor, decoder ---- */

static void added_push(JfTokenizer *tok, const char *content, int32_t id, gboolean special, gboolean normalized,
                       gboolean lstrip, gboolean rstrip)
{
  const char *s = g_string_chunk_insert(tok->strings, content);
  AddedToken t = { s, strlen(s), id, special, normalized, lstrip, rstrip };
  g_array_append_val(tok->added, t);
  g_hash_table_replace(tok->added_map, (gpointer)s, GUINT_TO_POINTER(tok->added->len));
  id_set(tok, id, s, special);
}

static gboolean load_added(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonNode *an = member(root, "added_tokens");
  if (node_is_null(an))
    return TRUE;
  JsonArray *arr = as_array(an);
  if (!arr)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens is not an array");
  guint n = json_array_get_length(arr);
  if (n > TOK_MAX_ADDED)
    return fail(error, JF_LOAD_ERROR_LIMIT, tok, "added_tokens has %u entries (limit %d)", n, TOK_MAX_ADDED);
  for (guint i = 0; i < n; i++) {
    JsonObject *o = as_object(json_array_get_element(arr, i));
    gint64 id;
    const char *content = as_string(member(o, "content"));
    if (!o || !as_int(member(o, "id"), &id) || id < 0 || id >= TOK_MAX_ID)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens[%u]: id must be an integer in 0..%d", i,
                  TOK_MAX_ID - 1);
    if (!token_text_ok(content))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens[%u]: content missing, empty or longer than %d bytes",
                  i, TOK_MAX_TOKEN_BYTES);
    gboolean special, normalized, lstrip, rstrip, single_word;
    if (!get_bool(o, "special", FALSE, &special) || !get_bool(o, "normalized", TRUE, &normalized) ||
        !get_bool(o, "lstrip", FALSE, &lstrip) || !get_bool(o, "rstrip", FALSE, &rstrip) ||
        !get_bool(o, "single_word", FALSE, &single_word))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens[%u]: a flag is not a boolean", i);
    if (single_word)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens[%u]: single_word=true is not supported", i);
    if (g_hash_table_contains(tok->added_map, content))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "added_tokens[%u]: \"%.64s\" is listed twice", i, content);
    added_push(tok, content, (int32_t)id, special, normalized, lstrip, rstrip);
  }
  return TRUE;
}

static gboolean load_normalizer(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonNode *nn = member(root, "normalizer");
  if (node_is_null(nn))
    return TRUE;
  JsonObject *o = as_object(nn);
  JsonArray *list = as_array(member(o, "normalizers"));
  if (o && strcmp(type_of(o), "Sequence") == 0 && list && json_array_get_length(list) == 0)
    return TRUE;
  return fail(error, JF_LOAD_ERROR_FORMAT, tok, "normalizer %s is not supported (only none or an empty Sequence)",
              o ? type_of(o) : "(not an object)");
}

static gboolean step_add(JfTokenizer *tok, TokRegex *re, gboolean removed, gboolean invert)
{
  Step *st = g_new0(Step, 1);
  st->re = re;
  st->removed = removed;
  st->invert = invert;
  g_ptr_array_add(tok->steps, st);
  return TRUE;
}

static gboolean load_split(JfTokenizer *tok, JsonObject *o, guint i, GError **error)
{
  JsonObject *pat = as_object(member(o, "pattern"));
  const char *regex = as_string(member(pat, "Regex")), *lit = as_string(member(pat, "String"));
  const char *behavior = as_string(member(o, "behavior"));
  gboolean invert;
  if ((!regex && !lit) || !behavior || !get_bool(o, "invert", FALSE, &invert))
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: Split needs pattern.Regex or "
                "pattern.String, behavior and a boolean invert", i);
  gboolean removed;
  if (strcmp(behavior, "Isolated") == 0)
    removed = FALSE;
  else if (strcmp(behavior, "Removed") == 0)
    removed = TRUE;
  else
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: Split behavior \"%.32s\" is not "
                "supported (Isolated, Removed)", i, behavior);
  GError *e = NULL;
  TokRegex *re = regex ? tokregex_new(regex, -1, &e) : tokregex_new_literal(lit, -1, &e);
  if (!re) {
    fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: %s", i, e->message);
    g_error_free(e);
    return FALSE;
  }
  return step_add(tok, re, removed, invert);
}

static gboolean load_pre_tokenizer(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonObject *pt = as_object(member(root, "pre_tokenizer"));
  if (!pt)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer is missing (a ByteLevel step is required)");
  JsonArray *list = NULL;
  guint n = 1;
  if (strcmp(type_of(pt), "Sequence") == 0) {
    if (!(list = as_array(member(pt, "pretokenizers"))))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer.pretokenizers is not an array");
    n = json_array_get_length(list);
  }
  if (n > TOK_MAX_STEPS)
    return fail(error, JF_LOAD_ERROR_LIMIT, tok, "pre_tokenizer has %u steps (limit %d)", n, TOK_MAX_STEPS);
  gboolean byte_level = FALSE;
  for (guint i = 0; i < n; i++) {
    JsonObject *o = list ? as_object(json_array_get_element(list, i)) : pt;
    const char *type = o ? type_of(o) : "(not an object)";
    if (byte_level)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u (%s) after ByteLevel is not supported",
                  i, type);
    if (strcmp(type, "Split") == 0) {
      if (!load_split(tok, o, i, error))
        return FALSE;
    } else if (strcmp(type, "Digits") == 0) {
      gboolean individual;
      if (!get_bool(o, "individual_digits", FALSE, &individual))
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: individual_digits is not a boolean", i);
      /* HF Digits: char::is_numeric (General_Category N), each digit or each run isolated */
      TokRegex *re = tokregex_new(individual ? "\\p{N}" : "\\p{N}+", -1, NULL);
      step_add(tok, re, FALSE, FALSE);
    } else if (strcmp(type, "ByteLevel") == 0) {
      gboolean prefix, use_regex;
      if (!get_bool(o, "add_prefix_space", TRUE, &prefix) || !get_bool(o, "use_regex", TRUE, &use_regex))
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: ByteLevel flags are not booleans", i);
      if (prefix || use_regex)
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: ByteLevel with add_prefix_space or "
                    "use_regex true is not supported", i);
      byte_level = TRUE;
    } else {
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer step %u: type %.32s is not supported", i, type);
    }
  }
  if (!byte_level)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "pre_tokenizer has no ByteLevel step (required for byte-level BPE)");
  return TRUE;
}

static gboolean load_template(JfTokenizer *tok, JsonObject *o, GError **error)
{
  JsonArray *single = as_array(member(o, "single"));
  JsonObject *specials = as_object(member(o, "special_tokens"));
  if (!single)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.single is not an array");
  gboolean seen_a = FALSE;
  guint n = json_array_get_length(single);
  for (guint i = 0; i < n; i++) {
    JsonObject *item = as_object(json_array_get_element(single, i));
    JsonObject *seq = as_object(member(item, "Sequence")), *sp = as_object(member(item, "SpecialToken"));
    if (seq) {
      const char *id = as_string(member(seq, "id"));
      if (!id || strcmp(id, "A") != 0 || seen_a)
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.single[%u]: only one Sequence A is allowed", i);
      seen_a = TRUE;
      continue;
    }
    const char *name = as_string(member(sp, "id"));
    JsonObject *def = name ? as_object(member(specials, name)) : NULL;
    JsonArray *ids = as_array(member(def, "ids"));
    if (!ids)
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.single[%u]: special token not defined in "
                  "post_processor.special_tokens with ids", i);
    if (json_array_get_length(ids) > 64)
      return fail(error, JF_LOAD_ERROR_LIMIT, tok, "post_processor.special_tokens[\"%.64s\"]: more than 64 ids", name);
    for (guint k = 0; k < json_array_get_length(ids); k++) {
      gint64 id;
      if (!as_int(json_array_get_element(ids, k), &id) || id < 0 || id >= TOK_MAX_ID)
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.special_tokens[\"%.64s\"].ids: bad id", name);
      int32_t v = (int32_t)id;
      g_array_append_val(seen_a ? tok->suffix_ids : tok->prefix_ids, v);
    }
  }
  if (!seen_a)
    return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.single has no Sequence A");
  return TRUE;
}

static gboolean load_post_processor(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonNode *pn = member(root, "post_processor");
  if (node_is_null(pn))
    return TRUE;
  JsonObject *pp = as_object(pn);
  JsonArray *list = NULL;
  guint n = 1;
  if (pp && strcmp(type_of(pp), "Sequence") == 0) {
    if (!(list = as_array(member(pp, "processors"))))
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor.processors is not an array");
    n = json_array_get_length(list);
  }
  for (guint i = 0; i < n; i++) {
    JsonObject *o = list ? as_object(json_array_get_element(list, i)) : pp;
    const char *type = o ? type_of(o) : "(not an object)";
    if (strcmp(type, "TemplateProcessing") == 0) {
      if (tok->prefix_ids->len || tok->suffix_ids->len)
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor: more than one TemplateProcessing");
      if (!load_template(tok, o, error))
        return FALSE;
    } else if (strcmp(type, "ByteLevel") != 0) { /* ByteLevel only adjusts offsets */
      return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor type %.32s is not supported", type);
    }
  }
  /* HF emits the template's ids as written; an id that no token has would bypass model_load's
   * check of the ids against vocab_size and silently become a zero embedding. */
  GArray *parts[] = {tok->prefix_ids, tok->suffix_ids};
  for (guint p = 0; p < G_N_ELEMENTS(parts); p++)
    for (guint k = 0; k < parts[p]->len; k++) {
      int32_t id = g_array_index(parts[p], int32_t, k);
      if (id >= tok->n_ids || !tok->ids[id].str)
        return fail(error, JF_LOAD_ERROR_FORMAT, tok, "post_processor: id %d is not a token of the vocabulary", id);
    }
  tok->bos_id = tok->prefix_ids->len ? g_array_index(tok->prefix_ids, int32_t, 0) : -1;
  return TRUE;
}

static gboolean load_decoder(JfTokenizer *tok, JsonObject *root, GError **error)
{
  JsonObject *d = as_object(member(root, "decoder"));
  if (d && strcmp(type_of(d), "ByteLevel") == 0)
    return TRUE;
  JsonArray *list = as_array(member(d, "decoders"));
  if (d && strcmp(type_of(d), "Sequence") == 0 && list && json_array_get_length(list) == 1 &&
      strcmp(type_of(as_object(json_array_get_element(list, 0))), "ByteLevel") == 0)
    return TRUE;
  return fail(error, JF_LOAD_ERROR_FORMAT, tok, "decoder %s is not supported (only ByteLevel)",
              d ? type_of(d) : "(missing)");
}

/* ---- public: lifetime ---- */

static void step_free(gpointer p)
{
  Step *st = p;
  tokregex_free(st->re);
  g_free(st);
}

static JfTokenizer *tokenizer_new(const char *path)
{
  byte_tables_init();
  JfTokenizer *tok = g_new0(JfTokenizer, 1);
  tok->path = g_strdup(path);
  tok->strings = g_string_chunk_new(1 << 20);
  tok->vocab = g_hash_table_new(g_str_hash, g_str_equal);
  tok->added = g_array_new(FALSE, FALSE, sizeof(AddedToken));
  tok->added_map = g_hash_table_new(g_str_hash, g_str_equal);
  tok->steps = g_ptr_array_new_with_free_func(step_free);
  tok->prefix_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  tok->suffix_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  tok->bos_id = -1;
  tok->unk_id = -1;
  g_mutex_init(&tok->lock);
  tok->cache = g_hash_table_new_full(g_bytes_hash, g_bytes_equal, (GDestroyNotify)g_bytes_unref,
                                     (GDestroyNotify)g_bytes_unref);
  return tok;
}

void tokenizer_free(JfTokenizer *tok)
{
  if (!tok)
    return;
  g_hash_table_destroy(tok->cache);
  g_mutex_clear(&tok->lock);
  g_array_free(tok->prefix_ids, TRUE);
  g_array_free(tok->suffix_ids, TRUE);
  g_ptr_array_free(tok->steps, TRUE);
  g_hash_table_destroy(tok->added_map);
  g_array_free(tok->added, TRUE);
  g_hash_table_destroy(tok->vocab);
  g_free(tok->merges);
  g_free(tok->ids);
  g_string_chunk_free(tok->strings);
  g_free(tok->path);
  g_free(tok);
}

static char *read_file_bounded(JfTokenizer *tok, gsize *len, GError **error)
{
  GStatBuf st;
  if (g_stat(tok->path, &st) != 0) {
    fail(error, JF_LOAD_ERROR_IO, tok, "cannot read: %s", g_strerror(errno));
    return NULL;
  }
  if (!S_ISREG(st.st_mode)) {
    fail(error, JF_LOAD_ERROR_IO, tok, "not a regular file");
    return NULL;
  }
  if ((guint64)st.st_size > TOK_MAX_FILE_BYTES) {
    fail(error, JF_LOAD_ERROR_LIMIT, tok, "file is larger than %" G_GSIZE_FORMAT " MiB", TOK_MAX_FILE_BYTES >> 20);
    return NULL;
  }
  char *data = NULL;
  GError *e = NULL;
  if (!g_file_get_contents(tok->path, &data, len, &e)) {
    fail(error, JF_LOAD_ERROR_IO, tok, "cannot read: %s", e->message);
    g_error_free(e);
    return NULL;
  }
  if (*len > TOK_MAX_FILE_BYTES) { /* grew since stat */
    g_free(data);
    fail(error, JF_LOAD_ERROR_LIMIT, tok, "file is larger than %" G_GSIZE_FORMAT " MiB", TOK_MAX_FILE_BYTES >> 20);
    return NULL;
  }
  return data;
}

JfTokenizer *tokenizer_load(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  JfTokenizer *tok = tokenizer_new(path);
  gsize len = 0;
  char *data = read_file_bounded(tok, &len, error);
  JsonParser *parser = NULL;
  gboolean ok = data != NULL;
  JfJsonTextCheck check = ok ? json_guard_check_text(data, len, TOK_MAX_JSON_DEPTH) : JF_JSON_TEXT_OK;
  if (check == JF_JSON_TEXT_TOO_DEEP)
    ok = fail(error, JF_LOAD_ERROR_LIMIT, tok, "JSON nested deeper than %d levels", TOK_MAX_JSON_DEPTH);
  else if (check == JF_JSON_TEXT_NOT_STRICT)
    ok = fail(error, JF_LOAD_ERROR_FORMAT, tok, "not valid JSON (single quotes or comments outside a string)");
  if (ok) {
    parser = json_parser_new_immutable();
    GError *e = NULL;
    if (!json_parser_load_from_data(parser, data, (gssize)len, &e)) {
      /* json-glib may quote a string cut in the middle of a UTF-8 sequence */
      char *why = g_utf8_make_valid(e->message, -1);
      ok = fail(error, JF_LOAD_ERROR_FORMAT, tok, "not valid JSON: %s", why);
      g_free(why);
      g_error_free(e);
    }
  }
  g_free(data);
  JsonObject *root = ok ? as_object(json_parser_get_root(parser)) : NULL;
  if (ok && !root)
    ok = fail(error, JF_LOAD_ERROR_FORMAT, tok, "the top level is not a JSON object");
  ok = ok && load_model(tok, root, error) && load_added(tok, root, error) && load_normalizer(tok, root, error) &&
       load_pre_tokenizer(tok, root, error) && load_post_processor(tok, root, error) && load_decoder(tok, root, error);
  if (parser)
    g_object_unref(parser);
  if (!ok) {
    tokenizer_free(tok);
    return NULL;
  }
  return tok;
}

/* ---- encoding ---- */

typedef struct {
  gsize start, end;
  int32_t id; /* an added token, or -1 for text still to tokenize */
} Segment;

/* Leftmost-longest match of the added tokens with normalized == want_normalized. first[b] says
 * whether any of them starts with byte b, so most positions cost one lookup. */
static gboolean added_find(const JfTokenizer *tok, const char *text, gsize from, gsize to, gboolean want_normalized,
                           const gboolean *first, gsize *ms, gsize *me, const AddedToken **which)
{
  for (gsize i = from; i < to; i++) {
    if (!first[(uint8_t)text[i]])
      continue;
    const AddedToken *best = NULL;
    for (guint k = 0; k < tok->added->len; k++) {
      const AddedToken *t = &g_array_index(tok->added, AddedToken, k);
      if (t->normalized != want_normalized || t->len > to - i || (best && t->len <= best->len))
        continue;
      if (t->content[0] == text[i] && memcmp(t->content, text + i, t->len) == 0)
        best = t;
    }
    if (best) {
      *ms = i;
      *me = i + best->len;
      *which = best;
      return TRUE;
    }
  }
  return FALSE;
}

static gboolean is_white_space(uint32_t c)
{
  return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

/* Splits each text segment of in around one class of added tokens (HF split_with_indices). */
static void added_split(const JfTokenizer *tok, const char *text, GArray *in, GArray *out, gboolean want_normalized)
{
  gboolean first[256] = { FALSE };
  for (guint k = 0; k < tok->added->len; k++) {
    const AddedToken *t = &g_array_index(tok->added, AddedToken, k);
    if (t->normalized == want_normalized)
      first[(uint8_t)t->content[0]] = TRUE;
  }
  for (guint i = 0; i < in->len; i++) {
    Segment sg = g_array_index(in, Segment, i);
    if (sg.id >= 0) {
      g_array_append_val(out, sg);
      continue;
    }
    gsize pos = sg.start, ms, me;
    const AddedToken *t;
    while (pos < sg.end && added_find(tok, text, pos, sg.end, want_normalized, first, &ms, &me, &t)) {
      if (t->lstrip) /* swallow whitespace on the left, back to the previous cut */
        while (ms > pos) {
          const char *p = g_utf8_find_prev_char(text + pos, text + ms);
          if (!p || !is_white_space(g_utf8_get_char(p)))
            break;
          ms = (gsize)(p - text);
        }
      if (t->rstrip)
        while (me < sg.end && is_white_space(g_utf8_get_char(text + me)))
          me = (gsize)(g_utf8_next_char(text + me) - text);
      if (ms > pos) {
        Segment gap = { pos, ms, -1 };
        g_array_append_val(out, gap);
      }
      Segment hit = { ms, me, t->id };
      g_array_append_val(out, hit);
      pos = me;
    }
    if (pos < sg.end) {
      Segment rest = { pos, sg.end, -1 };
      g_array_append_val(out, rest);
    }
  }
}

static void spans_push(GArray *out, const gsize *offs, gsize a, gsize b, gsize base)
{
  if (b > a) {
    Span s = { base + offs[a], base + offs[b] };
    g_array_append_val(out, s);
  }
}

/* One Split step over every piece. */
static void step_apply(const Step *st, const char *text, GArray *in, GArray *out, GArray *matches)
{
  for (guint i = 0; i < in->len; i++) {
    Span sp = g_array_index(in, Span, i);
    gsize len = sp.end - sp.start;
    uint32_t *cps = g_new(uint32_t, len + 1);
    gsize *offs = g_new(gsize, len + 1);
    gsize n = utf8_decode_span(text + sp.start, len, cps, offs);
    g_array_set_size(matches, 0);
    tokregex_find_all(st->re, cps, n, matches);
    gsize prev = 0;
    /* keep a part if Isolated, or if Removed and it is not what the pattern (inverted) selects */
    gboolean keep_match = !st->removed || st->invert, keep_gap = !st->removed || !st->invert;
    for (guint k = 0; k < matches->len; k++) {
      TokRegexMatch m = g_array_index(matches, TokRegexMatch, k);
      if (keep_gap)
        spans_push(out, offs, prev, m.start, sp.start);
      if (keep_match)
        spans_push(out, offs, m.start, m.end, sp.start);
      prev = m.end;
    }
    if (keep_gap)
      spans_push(out, offs, prev, n, sp.start);
    g_free(cps);
    g_free(offs);
  }
}

typedef struct {
  int32_t rank, pos, new_id;
} HeapItem;

static gboolean heap_less(const HeapItem *a, const HeapItem *b)
{
  return a->rank < b->rank || (a->rank == b->rank && a->pos < b->pos);
}

static void heap_push(GArray *h, HeapItem it)
{
  g_array_append_val(h, it);
  HeapItem *d = (HeapItem *)h->data;
  for (guint i = h->len - 1; i > 0;) {
    guint p = (i - 1) / 2;
    if (!heap_less(&d[i], &d[p]))
      break;
    HeapItem t = d[i]; d[i] = d[p]; d[p] = t;
    i = p;
  }
}

static HeapItem heap_pop(GArray *h)
{
  HeapItem *d = (HeapItem *)h->data;
  HeapItem top = d[0];
  d[0] = d[h->len - 1];
  g_array_set_size(h, h->len - 1);
  guint n = h->len, i = 0;
  for (;;) {
    guint l = 2 * i + 1, r = l + 1, m = i;
    if (l < n && heap_less(&d[l], &d[m])) m = l;
    if (r < n && heap_less(&d[r], &d[m])) m = r;
    if (m == i)
      break;
    HeapItem t = d[i]; d[i] = d[m]; d[m] = t;
    i = m;
  }
  return top;
}

static void heap_push_pair(const JfTokenizer *tok, GArray *h, const int32_t *sid, int32_t a, int32_t b)
{
  const MergeSlot *m = merge_find(tok, sid[a], sid[b]);
  if (m) {
    HeapItem it = { m->rank, a, m->new_id };
    heap_push(h, it);
  }
}

/* HF BPE::merge_word on the byte-level form of one piece. */
static void bpe_piece(const JfTokenizer *tok, const uint8_t *p, gsize len, GArray *out)
{
  if (tok->ignore_merges) {
    GString *w = g_string_sized_new(len * 2);
    for (gsize i = 0; i < len; i++)
      g_string_append_unichar(w, byte_to_cp[p[i]]);
    int32_t id = vocab_lookup(tok, w->str);
    g_string_free(w, TRUE);
    if (id >= 0) {
      g_array_append_val(out, id);
      return;
    }
  }
  int32_t *sid = g_new(int32_t, len + 1), *prev = g_new(int32_t, len + 1), *next = g_new(int32_t, len + 1);
  int32_t k = 0;
  gboolean pending_unk = FALSE;
  for (gsize i = 0; i < len; i++) {
    int32_t id = tok->byte_id[p[i]];
    if (id >= 0) {
      if (pending_unk)
        sid[k++] = tok->unk_id;
      pending_unk = FALSE;
      sid[k++] = id;
    } else if (tok->unk_id >= 0) {
      if (pending_unk && !tok->fuse_unk)
        sid[k++] = tok->unk_id;
      pending_unk = TRUE;
    } /* no unk token: HF drops the character */
  }
  if (pending_unk)
    sid[k++] = tok->unk_id;
  for (int32_t i = 0; i < k; i++) {
    prev[i] = i - 1;
    next[i] = i + 1 < k ? i + 1 : -1;
  }
  GArray *heap = g_array_new(FALSE, FALSE, sizeof(HeapItem));
  for (int32_t i = 0; i + 1 < k; i++)
    heap_push_pair(tok, heap, sid, i, i + 1);
  while (heap->len) {
    HeapItem top = heap_pop(heap);
    int32_t a = top.pos;
    if (sid[a] < 0 || next[a] < 0)
      continue;
    int32_t b = next[a];
    const MergeSlot *m = merge_find(tok, sid[a], sid[b]);
    if (!m || m->new_id != top.new_id) /* stale entry */
      continue;
    sid[a] = top.new_id;
    sid[b] = -1;
    next[a] = next[b];
    if (next[a] >= 0)
      prev[next[a]] = a;
    if (prev[a] >= 0)
      heap_push_pair(tok, heap, sid, prev[a], a);
    if (next[a] >= 0)
      heap_push_pair(tok, heap, sid, a, next[a]);
  }
  for (int32_t i = k ? 0 : -1; i >= 0; i = next[i])
    g_array_append_val(out, sid[i]);
  g_array_free(heap, TRUE);
  g_free(sid);
  g_free(prev);
  g_free(next);
}

static void bpe_cached(JfTokenizer *tok, const char *p, gsize len, GArray *out)
{
  if (len > TOK_CACHE_MAX_PIECE) {
    bpe_piece(tok, (const uint8_t *)p, len, out);
    return;
  }
  GBytes *key = g_bytes_new(p, len);
  GBytes *hit = g_hash_table_lookup(tok->cache, key);
  if (hit) {
    gsize n;
    const int32_t *ids = g_bytes_get_data(hit, &n);
    g_array_append_vals(out, ids, (guint)(n / sizeof(int32_t)));
    g_bytes_unref(key);
    return;
  }
  guint before = out->len;
  bpe_piece(tok, (const uint8_t *)p, len, out);
  if (g_hash_table_size(tok->cache) >= TOK_CACHE_MAX_ENTRIES)
    g_hash_table_remove_all(tok->cache);
  /* a piece may give no ids; then the array may have no storage yet to point into */
  GBytes *val = out->len > before
                  ? g_bytes_new(&g_array_index(out, int32_t, before), (out->len - before) * sizeof(int32_t))
                  : g_bytes_new(NULL, 0);
  g_hash_table_insert(tok->cache, key, val);
}

gboolean tokenizer_encode(JfTokenizer *tok, const char *text, gssize len, gboolean add_bos, GArray *out,
                          GError **error)
{
  g_return_val_if_fail(tok != NULL && out != NULL, FALSE);
  g_return_val_if_fail(g_array_get_element_size(out) == sizeof(int32_t), FALSE);
  g_return_val_if_fail(text != NULL || len == 0, FALSE);
  gsize n = len < 0 ? strlen(text) : (gsize)len;
  if (n > TOK_MAX_TEXT_BYTES) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "text to tokenize is longer than %" G_GSIZE_FORMAT
                " MiB", TOK_MAX_TEXT_BYTES >> 20);
    return FALSE;
  }
  gssize bad = utf8_find_invalid(text, n);
  if (bad >= 0) {
    g_set_error(error, G_CONVERT_ERROR, G_CONVERT_ERROR_ILLEGAL_SEQUENCE,
                "text to tokenize is not valid UTF-8 (byte offset %" G_GSSIZE_FORMAT ")", bad);
    return FALSE;
  }
  g_mutex_lock(&tok->lock);
  if (add_bos)
    g_array_append_vals(out, tok->prefix_ids->data, tok->prefix_ids->len);

  GArray *segs = g_array_new(FALSE, FALSE, sizeof(Segment)), *segs2 = g_array_new(FALSE, FALSE, sizeof(Segment));
  if (n) {
    Segment all = { 0, n, -1 };
    g_array_append_val(segs, all);
  }
  added_split(tok, text, segs, segs2, FALSE);
  g_array_set_size(segs, 0);
  added_split(tok, text, segs2, segs, TRUE);

  GArray *pieces = g_array_new(FALSE, FALSE, sizeof(Span)), *next = g_array_new(FALSE, FALSE, sizeof(Span));
  GArray *matches = g_array_new(FALSE, FALSE, sizeof(TokRegexMatch));
  for (guint i = 0; i < segs->len; i++) {
    Segment sg = g_array_index(segs, Segment, i);
    if (sg.id >= 0) {
      g_array_append_val(out, sg.id);
      continue;
    }
    g_array_set_size(pieces, 0);
    Span whole = { sg.start, sg.end };
    g_array_append_val(pieces, whole);
    for (guint s = 0; s < tok->steps->len; s++) {
      g_array_set_size(next, 0);
      step_apply(g_ptr_array_index(tok->steps, s), text, pieces, next, matches);
      GArray *t = pieces; pieces = next; next = t;
    }
    for (guint k = 0; k < pieces->len; k++) {
      Span sp = g_array_index(pieces, Span, k);
      bpe_cached(tok, text + sp.start, sp.end - sp.start, out);
    }
  }
  if (add_bos)
    g_array_append_vals(out, tok->suffix_ids->data, tok->suffix_ids->len);
  g_mutex_unlock(&tok->lock);
  g_array_free(matches, TRUE);
  g_array_free(pieces, TRUE);
  g_array_free(next, TRUE);
  g_array_free(segs, TRUE);
  g_array_free(segs2, TRUE);
  return TRUE;
}

/* ---- decoding and lookups ---- */

static const IdEntry *id_entry(const JfTokenizer *tok, int32_t id)
{
  if (!tok || id < 0 || id >= tok->n_ids || !tok->ids[id].str)
    return NULL;
  return &tok->ids[id];
}

char *tokenizer_decode(JfTokenizer *tok, const int32_t *ids, gsize n, gboolean skip_special)
{
  g_return_val_if_fail(tok != NULL && (ids != NULL || n == 0), NULL);
  GByteArray *raw = g_byte_array_new();
  for (gsize i = 0; i < n; i++) {
    const IdEntry *e = id_entry(tok, ids[i]);
    if (!e || (skip_special && e->special)) /* unknown ids are dropped, as in HF */
      continue;
    g_byte_array_append(raw, (const guint8 *)e->bytes, e->bytes_len);
  }
  GString *s = g_string_sized_new(raw->len + 1);
  utf8_append_lossy(s, raw->data, raw->len);
  g_byte_array_free(raw, TRUE);
  return g_string_free(s, FALSE);
}

const char *tokenizer_token_bytes(JfTokenizer *tok, int32_t id, gsize *len)
{
  const IdEntry *e = id_entry(tok, id);
  if (len)
    *len = e ? e->bytes_len : 0;
  return e ? e->bytes : NULL;
}

int32_t tokenizer_token_id(const JfTokenizer *tok, const char *content)
{
  g_return_val_if_fail(tok != NULL, -1);
  if (!content)
    return -1;
  guint k = GPOINTER_TO_UINT(g_hash_table_lookup(tok->added_map, content));
  if (k)
    return g_array_index(tok->added, AddedToken, k - 1).id;
  return vocab_lookup(tok, content);
}

int32_t tokenizer_add_special(JfTokenizer *tok, const char *content)
{
  g_return_val_if_fail(tok != NULL, -1);
  if (!content || !token_text_ok(content) || !g_utf8_validate(content, -1, NULL))
    return -1;
  g_mutex_lock(&tok->lock);
  int32_t id = tokenizer_token_id(tok, content);
  if (id < 0 && tok->n_ids < TOK_MAX_ID && tok->added->len < TOK_MAX_ADDED) {
    id = tok->n_ids;
    /* HF adds special tokens as normalized=false: matched in the first pass */
    added_push(tok, content, id, TRUE, FALSE, FALSE, FALSE);
  }
  g_mutex_unlock(&tok->lock);
  return id;
}

gboolean tokenizer_is_special(const JfTokenizer *tok, int32_t id)
{
  const IdEntry *e = id_entry(tok, id);
  return e && e->special;
}

int32_t tokenizer_bos_id(const JfTokenizer *tok)
{
  g_return_val_if_fail(tok != NULL, -1);
  return tok->bos_id;
}

int32_t tokenizer_n_ids(const JfTokenizer *tok)
{
  g_return_val_if_fail(tok != NULL, 0);
  return tok->n_ids;
}
