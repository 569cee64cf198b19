/* tokregex: the small regex engine behind the tokenizer's Split pre-tokenizer steps.
 *
 * HF tokenizers compiles Split patterns with Oniguruma (Ruby syntax). This engine implements the
 * subset of that syntax that byte-level BPE tokenizer.json files use, with Oniguruma's
 * leftmost-first (backtracking) semantics, and rejects everything else with an error instead of
 * guessing:
 *   literals (any code point, escaped punctuation, \t \n \r \f \v \a \e \xHH \x{H..} \uHHHH),
 *   .  (any code point but LF), [...] and [^...] with ranges and the escapes below,
 *   \s \S (Unicode White_Space), \p{N} \P{N} \p{^N} (General_Category N),
 *   ^ $ (Ruby: line anchors, LF only), \A \z,
 *   groups (...) and (?:...) (nothing is captured), alternation |,
 *   quantifiers ? * + {n} {n,} {,m} {n,m}, each optionally lazy (?? *? +? ...).
 * Not supported (error): lookaround, backreferences, possessive quantifiers, options (?i),
 * nested classes and class intersection (&&), POSIX brackets, \d \w \b \h and other properties,
 * and repeating (*, +, {n,m} with m > 1) an expression that can match the empty string.
 *
 * Matching works on arrays of code points with a backtracker that remembers failed states, so
 * hostile input cannot make it exponential: a scan costs O(program length x subject length),
 * plus re-scanning whatever a successful match looked at beyond its own end (nothing, for the
 * tokenizer.json patterns we know). */
#pragma once
#include <glib.h>
#include <stdint.h>

G_BEGIN_DECLS

typedef struct TokRegex TokRegex;

typedef struct {
  gsize start, end; /* code point indices, end exclusive */
} TokRegexMatch;

/* Limits, checked at compile time. */
#define TOKREGEX_MAX_PATTERN_BYTES 65536
#define TOKREGEX_MAX_INSTRUCTIONS 256
#define TOKREGEX_MAX_REPEAT 100

/* pattern: UTF-8, len bytes or -1. The error message says which construct is unsupported. */
TokRegex *tokregex_new(const char *pattern, gssize len, GError **error);
/* A pattern that matches exactly the given string (HF Split's {"String": ...}). */
TokRegex *tokregex_new_literal(const char *text, gssize len, GError **error);
void tokregex_free(TokRegex *re);

/* Appends to matches (GArray of TokRegexMatch) every non-empty match in cps[0..n), scanning
 * left to right without overlap the way Oniguruma's find_iter does (an empty match is skipped
 * and the scan goes on one code point later). */
void tokregex_find_all(const TokRegex *re, const uint32_t *cps, gsize n, GArray *matches);

G_END_DECLS
