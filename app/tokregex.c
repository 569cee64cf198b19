/* tokregex: parse (recursive descent into a small AST), compile to a Thompson-style program,
 * match with a backtracker that records visited (instruction, position) states.
 *
 * Why a visited set: the program has no captures or backreferences, so whether a state can reach
 * MATCH depends only on the state. A state seen once and abandoned can never succeed later, even
 * from another start position; skipping it keeps every scan linear in the subject and makes
 * pathological patterns like (?:a+)+b harmless. Backtracking order (SPLIT tries x before y)
 * gives Oniguruma's leftmost-first choice among alternatives and greedy/lazy quantifiers. */
#include "tokregex.h"
#include "unicode_tables.h"
#include <string.h>

#define MAX_CP 0x10FFFFu
#define MAX_DEPTH 64 /* group nesting, bounds the parser's recursion */

typedef JfUnicodeRange Range;

typedef struct {
  Range *r;
  gsize n;
} CpSet;

enum { OP_SET, OP_SPLIT, OP_JMP, OP_BOL, OP_EOL, OP_BOS, OP_EOS, OP_MATCH };

typedef struct {
  uint8_t op;
  uint32_t x, y; /* OP_SET: set index in x; OP_SPLIT: preferred x, other y; OP_JMP: x */
} Inst;

struct TokRegex {
  Inst *prog;
  gsize n_inst;
  CpSet *sets;
  gsize n_sets;
};

/* ---- code point sets ---- */

static int range_cmp(const void *a, const void *b)
{
  const Range *x = a, *y = b;
  return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : 0;
}

/* Sorts and merges overlapping/adjacent ranges in place. */
static void ranges_normalize(GArray *ranges)
{
  if (ranges->len == 0)
    return;
  g_array_sort(ranges, range_cmp);
  Range *r = (Range *)ranges->data;
  guint w = 0;
  for (guint i = 1; i < ranges->len; i++) {
    if (r[i].lo <= r[w].hi + 1) {
      if (r[i].hi > r[w].hi)
        r[w].hi = r[i].hi;
    } else {
      r[++w] = r[i];
    }
  }
  g_array_set_size(ranges, w + 1);
}

static void ranges_complement(GArray *ranges)
{
  ranges_normalize(ranges);
  GArray *out = g_array_new(FALSE, FALSE, sizeof(Range));
  uint32_t next = 0;
  for (guint i = 0; i < ranges->len; i++) {
    Range r = g_array_index(ranges, Range, i);
    if (r.lo > next) {
      Range gap = { next, r.lo - 1 };
      g_array_append_val(out, gap);
    }
    next = r.hi + 1;
  }
  if (next <= MAX_CP) {
    Range gap = { next, MAX_CP };
    g_array_append_val(out, gap);
  }
  g_array_set_size(ranges, 0);
  g_array_append_vals(ranges, out->data, out->len);
  g_array_free(out, TRUE);
}

static void ranges_add_table(GArray *ranges, const Range *t, gsize n, gboolean negate)
{
  if (!negate) {
    g_array_append_vals(ranges, t, n);
    return;
  }
  GArray *tmp = g_array_new(FALSE, FALSE, sizeof(Range));
  g_array_append_vals(tmp, t, n);
  ranges_complement(tmp);
  g_array_append_vals(ranges, tmp->data, tmp->len);
  g_array_free(tmp, TRUE);
}

static gboolean cpset_contains(const CpSet *s, uint32_t cp)
{
  gsize lo = 0, hi = s->n;
  while (lo < hi) {
    gsize mid = (lo + hi) / 2;
    if (cp < s->r[mid].lo)
      hi = mid;
    else if (cp > s->r[mid].hi)
      lo = mid + 1;
    else
      return TRUE;
  }
  return FALSE;
}

/* ---- AST ---- */

enum { N_SET, N_EMPTY, N_CAT, N_ALT, N_REPEAT, N_ASSERT };

typedef struct Node Node;
struct Node {
  int kind;
  uint32_t set;    /* N_SET: index; N_ASSERT: opcode */
  int min, max;    /* N_REPEAT; max -1 = unbounded */
  gboolean greedy; /* N_REPEAT */
  GPtrArray *kids; /* N_CAT, N_ALT, N_REPEAT (one kid) */
};

static Node *node_new(int kind)
{
  Node *n = g_new0(Node, 1);
  n->kind = kind;
  if (kind == N_CAT || kind == N_ALT || kind == N_REPEAT)
    n->kids = g_ptr_array_new();
  return n;
}

static void node_free(Node *n)
{
  if (!n)
    return;
  if (n->kids) {
    for (guint i = 0; i < n->kids->len; i++)
      node_free(g_ptr_array_index(n->kids, i));
    g_ptr_array_free(n->kids, TRUE);
  }
  g_free(n);
}

/* ---- parser ---- */

typedef struct {
  const uint32_t *p; /* pattern as code points */
  gsize n, i;
  GArray *sets;      /* CpSet */
  GError **error;
  gboolean failed;
  int depth;
} Parser;

static void parse_fail(Parser *ps, const char *what)
{
  if (ps->failed)
    return;
  ps->failed = TRUE;
  g_set_error(ps->error, G_REGEX_ERROR, G_REGEX_ERROR_COMPILE,
              "regex: %s at character %" G_GSIZE_FORMAT, what, ps->i);
}

static gboolean at_end(const Parser *ps) { return ps->i >= ps->n; }
static uint32_t peek(const Parser *ps) { return ps->i < ps->n ? ps->p[ps->i] : 0; }

static uint32_t add_set(Parser *ps, GArray *ranges)
{
  ranges_normalize(ranges);
  CpSet s = { (Range *)g_memdup2(ranges->data, (gsize)ranges->len * sizeof(Range)), ranges->len };
  g_array_append_val(ps->sets, s);
  return ps->sets->len - 1;
}

static int hex_val(uint32_t c)
{
  if (c >= '0' && c <= '9') return (int)(c - '0');
  if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
  if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
  return -1;
}

/* Reads exactly/at most `digits` hex digits (braced form when braced). */
static gboolean parse_hex(Parser *ps, int min_digits, int max_digits, gboolean braced, uint32_t *out)
{
  uint32_t v = 0;
  int k = 0;
  if (braced) {
    ps->i++; /* '{' */
  }
  while (!at_end(ps) && k < max_digits && hex_val(peek(ps)) >= 0) {
    v = v * 16 + (uint32_t)hex_val(peek(ps));
    ps->i++;
    k++;
  }
  if (braced) {
    if (peek(ps) != '}') {
      parse_fail(ps, "malformed \\x{...} escape");
      return FALSE;
    }
    ps->i++;
  }
  if (k < min_digits || v > MAX_CP || (v >= 0xD800 && v <= 0xDFFF)) {
    parse_fail(ps, "malformed hexadecimal escape");
    return FALSE;
  }
  *out = v;
  return TRUE;
}

/* Escape after '\' (ps->i at the character after the backslash). Either yields one code point
 * (*cp, returns 1) or appends a set to ranges (returns 2); 0 on error. in_class: inside [...]. */
static int parse_escape(Parser *ps, gboolean in_class, uint32_t *cp, GArray *ranges, uint32_t *assert_op)
{
  if (at_end(ps)) {
    parse_fail(ps, "pattern ends with a backslash");
    return 0;
  }
  uint32_t c = peek(ps);
  ps->i++;
  switch (c) {
  case 't': *cp = '\t'; return 1;
  case 'n': *cp = '\n'; return 1;
  case 'r': *cp = '\r'; return 1;
  case 'f': *cp = '\f'; return 1;
  case 'v': *cp = '\v'; return 1;
  case 'a': *cp = 0x07; return 1;
  case 'e': *cp = 0x1B; return 1;
  case 'x':
    if (peek(ps) == '{')
      return parse_hex(ps, 1, 8, TRUE, cp) ? 1 : 0;
    return parse_hex(ps, 1, 2, FALSE, cp) ? 1 : 0;
  case 'u':
    return parse_hex(ps, 4, 4, FALSE, cp) ? 1 : 0;
  case 's':
  case 'S':
    ranges_add_table(ranges, unicode_white_space, unicode_white_space_len, c == 'S');
    return 2;
  case 'p':
  case 'P': {
    if (peek(ps) != '{') {
      parse_fail(ps, "\\p without {...}");
      return 0;
    }
    ps->i++;
    gboolean negate = (c == 'P');
    if (peek(ps) == '^') {
      negate = !negate;
      ps->i++;
    }
    GString *name = g_string_new(NULL);
    while (!at_end(ps) && peek(ps) != '}' && name->len < 64) {
      uint32_t ch = peek(ps);
      /* Oniguruma ignores case, spaces, '_' and '-' in property names */
      if (ch != ' ' && ch != '_' && ch != '-')
        g_string_append_c(name, (char)g_ascii_tolower(ch < 128 ? (char)ch : '?'));
      ps->i++;
    }
    gboolean ok = peek(ps) == '}';
    if (ok)
      ps->i++;
    gboolean known = ok && (strcmp(name->str, "n") == 0 || strcmp(name->str, "number") == 0);
    g_string_free(name, TRUE);
    if (!known) {
      parse_fail(ps, "unsupported Unicode property (only \\p{N} is supported)");
      return 0;
    }
    ranges_add_table(ranges, unicode_number, unicode_number_len, negate);
    return 2;
  }
  case 'A':
  case 'z':
    if (in_class || !assert_op) {
      parse_fail(ps, "anchor escape inside a character class");
      return 0;
    }
    *assert_op = (c == 'A') ? OP_BOS : OP_EOS;
    return 3;
  default:
    break;
  }
  if (c < 128 && g_ascii_isalnum((char)c)) {
    parse_fail(ps, "unsupported escape");
    return 0;
  }
  *cp = c; /* escaped punctuation, space or non-ASCII: itself */
  return 1;
}

static Node *set_node(Parser *ps, GArray *ranges)
{
  Node *n = node_new(N_SET);
  n->set = add_set(ps, ranges);
  return n;
}

static Node *parse_class(Parser *ps)
{
  ps->i++; /* '[' */
  GArray *ranges = g_array_new(FALSE, FALSE, sizeof(Range));
  gboolean negate = FALSE;
  if (peek(ps) == '^') {
    negate = TRUE;
    ps->i++;
  }
  if (peek(ps) == ']') {
    parse_fail(ps, "']' first in a character class is ambiguous; escape it");
    goto fail;
  }
  for (;;) {
    if (at_end(ps)) {
      parse_fail(ps, "unterminated character class");
      goto fail;
    }
    uint32_t c = peek(ps);
    if (c == ']') {
      ps->i++;
      break;
    }
    if (c == '[') {
      parse_fail(ps, "nested character classes and POSIX brackets are not supported");
      goto fail;
    }
    if (c == '&' && ps->i + 1 < ps->n && ps->p[ps->i + 1] == '&') {
      parse_fail(ps, "character class intersection (&&) is not supported");
      goto fail;
    }
    uint32_t lo;
    if (c == '\\') {
      ps->i++;
      int kind = parse_escape(ps, TRUE, &lo, ranges, NULL);
      if (kind == 0)
        goto fail;
      if (kind == 2) {
        if (peek(ps) == '-' && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
          parse_fail(ps, "a class escape cannot start a range");
          goto fail;
        }
        continue;
      }
    } else {
      lo = c;
      ps->i++;
    }
    uint32_t hi = lo;
    if (peek(ps) == '-' && ps->i + 1 < ps->n && ps->p[ps->i + 1] != ']') {
      ps->i++;
      uint32_t d = peek(ps);
      if (d == '[') {
        parse_fail(ps, "nested character classes are not supported");
        goto fail;
      }
      if (d == '\\') {
        ps->i++;
        GArray *dummy = g_array_new(FALSE, FALSE, sizeof(Range));
        int kind = parse_escape(ps, TRUE, &hi, dummy, NULL);
        g_array_free(dummy, TRUE);
        if (kind != 1) {
          if (kind == 2)
            parse_fail(ps, "a class escape cannot end a range");
          goto fail;
        }
      } else {
        hi = d;
        ps->i++;
      }
      if (hi < lo) {
        parse_fail(ps, "character class range out of order");
        goto fail;
      }
    }
    Range r = { lo, hi };
    g_array_append_val(ranges, r);
  }
  if (negate)
    ranges_complement(ranges);
  Node *n = set_node(ps, ranges);
  g_array_free(ranges, TRUE);
  return n;
fail:
  g_array_free(ranges, TRUE);
  return NULL;
}

static Node *parse_alt(Parser *ps);

static Node *parse_atom(Parser *ps)
{
  uint32_t c = peek(ps);
  GArray *ranges;
  Node *n;
  switch (c) {
  case '(': {
    if (++ps->depth > MAX_DEPTH) {
      parse_fail(ps, "groups nested too deeply");
      return NULL;
    }
    ps->i++;
    if (peek(ps) == '?') {
      if (ps->i + 1 < ps->n && ps->p[ps->i + 1] == ':') {
        ps->i += 2;
      } else {
        parse_fail(ps, "unsupported group syntax (?...) (lookaround, options or named groups)");
        return NULL;
      }
    }
    n = parse_alt(ps);
    if (!n)
      return NULL;
    if (peek(ps) != ')') {
      node_free(n);
      parse_fail(ps, "missing ')'");
      return NULL;
    }
    ps->i++;
    ps->depth--;
    return n;
  }
  case '[':
    return parse_class(ps);
  case '.': {
    ps->i++;
    ranges = g_array_new(FALSE, FALSE, sizeof(Range));
    Range nl = { '\n', '\n' };
    g_array_append_val(ranges, nl);
    ranges_complement(ranges);
    n = set_node(ps, ranges);
    g_array_free(ranges, TRUE);
    return n;
  }
  case '^':
  case '$':
    ps->i++;
    n = node_new(N_ASSERT);
    n->set = (c == '^') ? OP_BOL : OP_EOL;
    return n;
  case '\\': {
    ps->i++;
    uint32_t cp = 0, op = 0;
    ranges = g_array_new(FALSE, FALSE, sizeof(Range));
    int kind = parse_escape(ps, FALSE, &cp, ranges, &op);
    n = NULL;
    if (kind == 1) {
      Range r = { cp, cp };
      g_array_append_val(ranges, r);
      n = set_node(ps, ranges);
    } else if (kind == 2) {
      n = set_node(ps, ranges);
    } else if (kind == 3) {
      n = node_new(N_ASSERT);
      n->set = op;
    }
    g_array_free(ranges, TRUE);
    return n;
  }
  case '*':
  case '+':
  case '?':
    parse_fail(ps, "quantifier without anything to repeat");
    return NULL;
  case '{':
    parse_fail(ps, "'{' must be escaped when it is not a repetition");
    return NULL;
  default: {
    ps->i++;
    ranges = g_array_new(FALSE, FALSE, sizeof(Range));
    Range r = { c, c };
    g_array_append_val(ranges, r);
    n = set_node(ps, ranges);
    g_array_free(ranges, TRUE);
    return n;
  }
  }
}

static gboolean parse_int(Parser *ps, int *out)
{
  int v = 0, k = 0;
  while (!at_end(ps) && peek(ps) >= '0' && peek(ps) <= '9') {
    v = v * 10 + (int)(peek(ps) - '0');
    if (v > TOKREGEX_MAX_REPEAT) {
      parse_fail(ps, "repetition count too large");
      return FALSE;
    }
    ps->i++;
    k++;
  }
  *out = k ? v : -1;
  return TRUE;
}

/* Returns TRUE and fills min/max if a quantifier follows; FALSE otherwise (or on error). */
static gboolean parse_quantifier(Parser *ps, int *min, int *max)
{
  uint32_t c = peek(ps);
  if (c == '?') { *min = 0; *max = 1; ps->i++; return TRUE; }
  if (c == '*') { *min = 0; *max = -1; ps->i++; return TRUE; }
  if (c == '+') { *min = 1; *max = -1; ps->i++; return TRUE; }
  if (c != '{')
    return FALSE;
  gsize save = ps->i;
  ps->i++;
  int a, b;
  if (!parse_int(ps, &a))
    return FALSE;
  if (peek(ps) == '}') {
    if (a < 0)
      goto not_interval;
    ps->i++;
    *min = *max = a;
    return TRUE;
  }
  if (peek(ps) != ',')
    goto not_interval;
  ps->i++;
  if (!parse_int(ps, &b))
    return FALSE;
  if (peek(ps) != '}' || (a < 0 && b < 0))
    goto not_interval;
  ps->i++;
  *min = a < 0 ? 0 : a;
  *max = b; /* -1: unbounded */
  if (*max >= 0 && *max < *min) {
    parse_fail(ps, "repetition {n,m} with m < n");
    return FALSE;
  }
  return TRUE;
not_interval:
  ps->i = save;
  parse_fail(ps, "'{' must be escaped when it is not a repetition");
  return FALSE;
}

/* Can n match the empty string? */
static gboolean node_nullable(const Node *n)
{
  switch (n->kind) {
  case N_SET:
    return FALSE;
  case N_CAT:
    for (guint i = 0; i < n->kids->len; i++)
      if (!node_nullable(g_ptr_array_index(n->kids, i)))
        return FALSE;
    return TRUE;
  case N_ALT:
    for (guint i = 0; i < n->kids->len; i++)
      if (node_nullable(g_ptr_array_index(n->kids, i)))
        return TRUE;
    return FALSE;
  case N_REPEAT:
    return n->min == 0 || node_nullable(g_ptr_array_index(n->kids, 0));
  default: /* N_EMPTY, N_ASSERT */
    return TRUE;
  }
}

static Node *parse_repeat(Parser *ps)
{
  Node *atom = parse_atom(ps);
  if (!atom)
    return NULL;
  int min, max;
  while (!ps->failed && parse_quantifier(ps, &min, &max)) {
    if (atom->kind == N_ASSERT) {
      node_free(atom);
      parse_fail(ps, "quantifier on an anchor");
      return NULL;
    }
    /* Oniguruma (like Perl) ends a loop when an iteration matches empty, a rule that depends
     * on where the iteration started and so does not fit the visited-state matcher. */
    if ((max < 0 || max > 1) && node_nullable(atom)) {
      node_free(atom);
      parse_fail(ps, "repeating an expression that can match empty is not supported");
      return NULL;
    }
    Node *rep = node_new(N_REPEAT);
    rep->min = min;
    rep->max = max;
    rep->greedy = TRUE;
    if (peek(ps) == '?') {
      rep->greedy = FALSE;
      ps->i++;
    } else if (peek(ps) == '+') {
      node_free(rep);
      node_free(atom);
      parse_fail(ps, "possessive quantifiers are not supported");
      return NULL;
    }
    g_ptr_array_add(rep->kids, atom);
    atom = rep;
    uint32_t c = peek(ps);
    if (c == '?' || c == '*' || c == '+' || c == '{') {
      node_free(atom);
      parse_fail(ps, "stacked quantifiers are not supported");
      return NULL;
    }
  }
  if (ps->failed) {
    node_free(atom);
    return NULL;
  }
  return atom;
}

static Node *parse_cat(Parser *ps)
{
  Node *cat = node_new(N_CAT);
  while (!at_end(ps) && peek(ps) != '|' && peek(ps) != ')') {
    Node *r = parse_repeat(ps);
    if (!r) {
      node_free(cat);
      return NULL;
    }
    g_ptr_array_add(cat->kids, r);
  }
  return cat;
}

static Node *parse_alt(Parser *ps)
{
  Node *alt = node_new(N_ALT);
  for (;;) {
    Node *c = parse_cat(ps);
    if (!c) {
      node_free(alt);
      return NULL;
    }
    g_ptr_array_add(alt->kids, c);
    if (peek(ps) != '|' || at_end(ps))
      break;
    ps->i++;
  }
  return alt;
}

/* ---- compiler ---- */

typedef struct {
  GArray *prog; /* Inst */
  gboolean too_big;
} Compiler;

static uint32_t emit(Compiler *cc, uint8_t op, uint32_t x, uint32_t y)
{
  Inst in = { op, x, y };
  if (cc->prog->len >= TOKREGEX_MAX_INSTRUCTIONS)
    cc->too_big = TRUE;
  else
    g_array_append_val(cc->prog, in);
  return cc->prog->len ? cc->prog->len - 1 : 0;
}

static Inst *inst_at(Compiler *cc, uint32_t pc) { return &g_array_index(cc->prog, Inst, pc); }

static void compile_node(Compiler *cc, const Node *n)
{
  if (cc->too_big)
    return;
  switch (n->kind) {
  case N_SET:
    emit(cc, OP_SET, n->set, 0);
    break;
  case N_ASSERT:
    emit(cc, (uint8_t)n->set, 0, 0);
    break;
  case N_EMPTY:
    break;
  case N_CAT:
    for (guint i = 0; i < n->kids->len; i++)
      compile_node(cc, g_ptr_array_index(n->kids, i));
    break;
  case N_ALT: {
    /* SPLIT a, next; a; JMP end; next: SPLIT b, next2; ... last */
    GArray *jumps = g_array_new(FALSE, FALSE, sizeof(uint32_t));
    for (guint i = 0; i < n->kids->len && !cc->too_big; i++) {
      gboolean last = (i + 1 == n->kids->len);
      uint32_t split = 0;
      if (!last)
        split = emit(cc, OP_SPLIT, 0, 0);
      uint32_t start = cc->prog->len;
      compile_node(cc, g_ptr_array_index(n->kids, i));
      if (!last) {
        uint32_t j = emit(cc, OP_JMP, 0, 0);
        g_array_append_val(jumps, j);
        if (cc->too_big)
          break;
        inst_at(cc, split)->x = start;
        inst_at(cc, split)->y = cc->prog->len;
      }
    }
    if (!cc->too_big)
      for (guint i = 0; i < jumps->len; i++)
        inst_at(cc, g_array_index(jumps, uint32_t, i))->x = cc->prog->len;
    g_array_free(jumps, TRUE);
    break;
  }
  case N_REPEAT: {
    const Node *kid = g_ptr_array_index(n->kids, 0);
    for (int i = 0; i < n->min && !cc->too_big; i++)
      compile_node(cc, kid);
    if (n->max < 0) {
      /* L: SPLIT body, end; body; JMP L */
      uint32_t split = emit(cc, OP_SPLIT, 0, 0);
      compile_node(cc, kid);
      emit(cc, OP_JMP, split, 0);
      if (cc->too_big)
        break;
      uint32_t body = split + 1, end = cc->prog->len;
      inst_at(cc, split)->x = n->greedy ? body : end;
      inst_at(cc, split)->y = n->greedy ? end : body;
    } else {
      /* optional copies: SPLIT body1, end; body1; SPLIT body2, end; body2; ... end */
      GArray *splits = g_array_new(FALSE, FALSE, sizeof(uint32_t));
      for (int i = n->min; i < n->max && !cc->too_big; i++) {
        uint32_t s = emit(cc, OP_SPLIT, 0, 0);
        g_array_append_val(splits, s);
        compile_node(cc, kid);
      }
      if (!cc->too_big) {
        uint32_t end = cc->prog->len;
        for (guint i = 0; i < splits->len; i++) {
          uint32_t s = g_array_index(splits, uint32_t, i);
          inst_at(cc, s)->x = n->greedy ? s + 1 : end;
          inst_at(cc, s)->y = n->greedy ? end : s + 1;
        }
      }
      g_array_free(splits, TRUE);
    }
    break;
  }
  default:
    break;
  }
}

static TokRegex *regex_build(const uint32_t *cps, gsize n, gboolean literal, GError **error)
{
  Parser ps = { cps, n, 0, g_array_new(FALSE, FALSE, sizeof(CpSet)), error, FALSE, 0 };
  Node *root;
  if (literal) {
    root = node_new(N_CAT);
    for (gsize i = 0; i < n; i++) {
      GArray *ranges = g_array_new(FALSE, FALSE, sizeof(Range));
      Range r = { cps[i], cps[i] };
      g_array_append_val(ranges, r);
      g_ptr_array_add(root->kids, set_node(&ps, ranges));
      g_array_free(ranges, TRUE);
    }
  } else {
    root = parse_alt(&ps);
    if (root && !at_end(&ps)) {
      parse_fail(&ps, "unbalanced ')'");
      node_free(root);
      root = NULL;
    }
  }
  TokRegex *re = NULL;
  if (root) {
    Compiler cc = { g_array_new(FALSE, FALSE, sizeof(Inst)), FALSE };
    compile_node(&cc, root);
    emit(&cc, OP_MATCH, 0, 0);
    if (cc.too_big) {
      g_set_error(error, G_REGEX_ERROR, G_REGEX_ERROR_COMPILE,
                  "regex: pattern compiles to more than %d instructions", TOKREGEX_MAX_INSTRUCTIONS);
      g_array_free(cc.prog, TRUE);
    } else {
      re = g_new0(TokRegex, 1);
      re->n_inst = cc.prog->len;
      re->prog = (Inst *)g_array_free(cc.prog, FALSE);
    }
    node_free(root);
  }
  if (re) {
    re->n_sets = ps.sets->len;
    re->sets = (CpSet *)g_array_free(ps.sets, FALSE);
  } else {
    for (guint i = 0; i < ps.sets->len; i++)
      g_free(g_array_index(ps.sets, CpSet, i).r);
    g_array_free(ps.sets, TRUE);
  }
  return re;
}

static uint32_t *utf8_to_cps(const char *s, gssize len, gsize *n_out, GError **error)
{
  if (len < 0)
    len = (gssize)strlen(s);
  if (len > TOKREGEX_MAX_PATTERN_BYTES) {
    g_set_error(error, G_REGEX_ERROR, G_REGEX_ERROR_COMPILE, "regex: pattern longer than %d bytes",
                TOKREGEX_MAX_PATTERN_BYTES);
    return NULL;
  }
  if (!g_utf8_validate(s, len, NULL)) {
    g_set_error(error, G_REGEX_ERROR, G_REGEX_ERROR_COMPILE, "regex: pattern is not valid UTF-8");
    return NULL;
  }
  glong n = 0;
  gunichar *u = g_utf8_to_ucs4_fast(s, len, &n);
  *n_out = (gsize)n;
  return (uint32_t *)u;
}

TokRegex *tokregex_new(const char *pattern, gssize len, GError **error)
{
  gsize n = 0;
  uint32_t *cps = utf8_to_cps(pattern, len, &n, error);
  if (!cps)
    return NULL;
  TokRegex *re = regex_build(cps, n, FALSE, error);
  g_free(cps);
  return re;
}

TokRegex *tokregex_new_literal(const char *text, gssize len, GError **error)
{
  gsize n = 0;
  uint32_t *cps = utf8_to_cps(text, len, &n, error);
  if (!cps)
    return NULL;
  TokRegex *re = regex_build(cps, n, TRUE, error);
  g_free(cps);
  return re;
}

void tokregex_free(TokRegex *re)
{
  if (!re)
    return;
  for (gsize i = 0; i < re->n_sets; i++)
    g_free(re->sets[i].r);
  g_free(re->sets);
  g_free(re->prog);
  g_free(re);
}

/* ---- matcher ---- */

typedef struct {
  uint32_t pc;
  gsize pos;
} Job;

typedef struct {
  const TokRegex *re;
  const uint32_t *cps;
  gsize n;
  uint64_t *visited; /* bit (pos * n_inst + pc) */
  GArray *stack;     /* Job */
  gsize hi;          /* highest position visited since the last clear */
} Matcher;

static gboolean visit(Matcher *m, uint32_t pc, gsize pos)
{
  gsize bit = pos * m->re->n_inst + pc;
  uint64_t mask = (uint64_t)1 << (bit & 63);
  if (m->visited[bit >> 6] & mask)
    return FALSE;
  m->visited[bit >> 6] |= mask;
  if (pos > m->hi)
    m->hi = pos;
  return TRUE;
}

/* Anchored attempt at start; returns TRUE with the end of the preferred match. */
static gboolean match_at(Matcher *m, gsize start, gsize *end)
{
  const Inst *prog = m->re->prog;
  g_array_set_size(m->stack, 0);
  Job j0 = { 0, start };
  g_array_append_val(m->stack, j0);
  while (m->stack->len) {
    Job job = g_array_index(m->stack, Job, m->stack->len - 1);
    g_array_set_size(m->stack, m->stack->len - 1);
    uint32_t pc = job.pc;
    gsize p = job.pos;
    for (;;) {
      if (!visit(m, pc, p))
        break;
      const Inst *in = &prog[pc];
      gboolean ok = FALSE;
      switch (in->op) {
      case OP_SET:
        if (p < m->n && cpset_contains(&m->re->sets[in->x], m->cps[p])) {
          pc++;
          p++;
          continue;
        }
        break;
      case OP_SPLIT: {
        Job alt = { in->y, p };
        g_array_append_val(m->stack, alt);
        pc = in->x;
        continue;
      }
      case OP_JMP:
        pc = in->x;
        continue;
      case OP_BOL: ok = (p == 0 || m->cps[p - 1] == '\n'); break;
      case OP_EOL: ok = (p == m->n || m->cps[p] == '\n'); break;
      case OP_BOS: ok = (p == 0); break;
      case OP_EOS: ok = (p == m->n); break;
      case OP_MATCH:
        *end = p;
        return TRUE;
      default:
        break;
      }
      if (!ok)
        break;
      pc++;
    }
  }
  return FALSE;
}

void tokregex_find_all(const TokRegex *re, const uint32_t *cps, gsize n, GArray *matches)
{
  gsize bits = (n + 1) * re->n_inst;
  Matcher m = { re, cps, n, g_new0(uint64_t, bits / 64 + 1), g_array_new(FALSE, FALSE, sizeof(Job)), 0 };
  gsize pos = 0;
  while (pos <= n) {
    gsize s, e = 0;
    gboolean found = FALSE;
    /* States visited by failed attempts are dead for every later start: keep them marked. */
    for (s = pos; s <= n; s++)
      if (match_at(&m, s, &e)) {
        found = TRUE;
        break;
      }
    if (!found)
      break;
    if (e > s) {
      TokRegexMatch mt = { s, e };
      g_array_append_val(matches, mt);
    }
    gsize next = (e > s) ? e : s + 1;
    /* A successful attempt may have marked live states; forget those the next scan can reach. */
    if (next <= m.hi) {
      gsize b1 = (m.hi + 1) * re->n_inst; /* clear bits [next * n_inst, b1) */
      for (gsize b = next * re->n_inst; b < b1;) {
        if ((b & 63) == 0 && b + 64 <= b1) {
          m.visited[b >> 6] = 0;
          b += 64;
        } else {
          m.visited[b >> 6] &= ~((uint64_t)1 << (b & 63));
          b++;
        }
      }
    }
    pos = next;
  }
  g_free(m.visited);
  g_array_free(m.stack, TRUE);
}
