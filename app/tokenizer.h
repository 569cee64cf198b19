/* tokenizer: HuggingFace tokenizer.json byte-level BPE (DeepSeek-LLM flavour): added/special
 * tokens matched first (longest match), the Split regex pre-tokenizer sequence, ByteLevel, merges
 * by rank, and the ByteLevel decoder. */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct JfTokenizer JfTokenizer;

/* Errors are JF_LOAD_ERROR (safetensors.h), messages start with the path. */
JfTokenizer *tokenizer_load(const char *path, GError **error);
void tokenizer_free(JfTokenizer *tok);

/* Appends the ids of text (UTF-8, len bytes or -1) to out (GArray of int32_t). With add_bos the
 * post-processor's template is applied (for these files "BOS $A": BOS comes first). Invalid
 * UTF-8 is an error (G_CONVERT_ERROR_ILLEGAL_SEQUENCE), so is text over the size limit
 * (JF_LOAD_ERROR_LIMIT). */
gboolean tokenizer_encode(JfTokenizer *tok, const char *text, gssize len, gboolean add_bos,
                          GArray *out, GError **error);
/* HF decode: every token through the inverse byte table, UTF-8 decoded lossily (U+FFFD).
 * skip_special drops special tokens. Returns a newly allocated string. */
char *tokenizer_decode(JfTokenizer *tok, const int32_t *ids, gsize n, gboolean skip_special);
/* The raw bytes of one token (for streaming output); NULL/0 for unknown ids. */
const char *tokenizer_token_bytes(JfTokenizer *tok, int32_t id, gsize *len);

/* -1 if absent. Looks in the added tokens and the vocabulary. */
int32_t tokenizer_token_id(const JfTokenizer *tok, const char *content);
/* If content is already a token, returns its id; else adds it as a special token with
 * id = largest id + 1 (the processor's runtime rule) and returns that. -1 when content is NULL,
 * empty, not UTF-8, too long, or a limit of tokenizer.c is reached. Not safe while another
 * thread uses the tokenizer. */
int32_t tokenizer_add_special(JfTokenizer *tok, const char *content);
gboolean tokenizer_is_special(const JfTokenizer *tok, int32_t id);
int32_t tokenizer_bos_id(const JfTokenizer *tok);  /* from the post-processor, -1 if none */
/* Largest id + 1. */
int32_t tokenizer_n_ids(const JfTokenizer *tok);

G_END_DECLS
