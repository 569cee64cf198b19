/* safetensors: mmap-backed reader. The header is parsed by a small dedicated JSON parser rather
 * than json-glib because (a) json-glib silently keeps one of two duplicate keys, which would let a
 * hostile file alias two tensors, and (b) json-glib recurses without a depth bound, so a 100 MiB
 * header of '[' would overflow the stack. Unknown fields inside a tensor entry are skipped with a
 * bounded depth, as the reference loader (serde) ignores them too. */
#include "safetensors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "safetensors.c assumes a little-endian host (the format is little-endian)"
#endif

G_DEFINE_QUARK(jf-load-error-quark, jf_load_error)

/* The reference implementation (huggingface/safetensors) refuses headers above 100 MB. */
#define ST_MAX_HEADER ((uint64_t)100 * 1024 * 1024)
/* Nesting allowed inside unknown fields of a tensor entry; real files have none. */
#define ST_MAX_SKIP_DEPTH 32
#define ST_MAX_TENSORS (1u << 20)

struct StFile {
  char *path;
  void *map;
  size_t map_size;
  const uint8_t *data;  /* first byte after the header */
  uint64_t data_size;
  StTensor *tensors;
  guint n_tensors;
  GHashTable *by_name;  /* name -> index + 1 */
};

static const struct {
  const char *name;
  StDtype dtype;
  unsigned size;
} dtype_table[] = {
  {"BF16", ST_DTYPE_BF16, 2}, {"F16", ST_DTYPE_F16, 2}, {"F32", ST_DTYPE_F32, 4},
  {"I32", ST_DTYPE_I32, 4},   {"I64", ST_DTYPE_I64, 8}, {"U8", ST_DTYPE_U8, 1},
};

const char *safetensors_dtype_name(StDtype d) {
  for (size_t i = 0; i < G_N_ELEMENTS(dtype_table); i++)
    if (dtype_table[i].dtype == d) return dtype_table[i].name;
  return "?";
}

static unsigned dtype_size(StDtype d) {
  for (size_t i = 0; i < G_N_ELEMENTS(dtype_table); i++)
    if (dtype_table[i].dtype == d) return dtype_table[i].size;
  return 0;
}

/* ---------------------------------------------------------------------------------------------
 * Header parser. On failure it fills `msg` and returns FALSE; the caller adds the file name. */

typedef struct {
  const char *p, *end, *start;
  GString *msg;  /* first error, if any */
} Parser;

static gboolean fail(Parser *ps, const char *fmt, ...) G_GNUC_PRINTF(2, 3);
static gboolean fail(Parser *ps, const char *fmt, ...) {
  if (ps->msg->len == 0) {
    va_list ap;
    va_start(ap, fmt);
    g_string_append_vprintf(ps->msg, fmt, ap);
    va_end(ap);
  }
  return FALSE;
}

static void skip_ws(Parser *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static gboolean expect(Parser *ps, char c) {
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "header JSON ends early (expected '%c')", c);
  if (*ps->p != c) return fail(ps, "header JSON: expected '%c' at byte %td of the header", c, ps->p - ps->start);
  ps->p++;
  return TRUE;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static gboolean read_hex4(Parser *ps, guint32 *out) {
  if (ps->end - ps->p < 4) return fail(ps, "header JSON: truncated \\u escape");
  guint32 v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(ps->p[i]);
    if (h < 0) return fail(ps, "header JSON: bad \\u escape");
    v = v * 16 + (guint32)h;
  }
  ps->p += 4;
  *out = v;
  return TRUE;
}

/* Parses a JSON string at ps->p (after whitespace). The raw header was checked to be valid UTF-8
 * beforehand, so multi-byte sequences can be copied as they are. If out is NULL the string is only
 * skipped. Embedded NUL (\u0000) is rejected: names are used as C strings. */
static gboolean parse_string(Parser *ps, GString *out) {
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '"') return fail(ps, "header JSON: expected a string");
  ps->p++;
  for (;;) {
    if (ps->p >= ps->end) return fail(ps, "header JSON: unterminated string");
    unsigned char c = (unsigned char)*ps->p++;
    if (c == '"') return TRUE;
    if (c < 0x20) return fail(ps, "header JSON: control character in a string");
    if (c != '\\') {
      if (out) g_string_append_c(out, (char)c);
      continue;
    }
    if (ps->p >= ps->end) return fail(ps, "header JSON: unterminated string");
    char e = *ps->p++;
    switch (e) {
      case '"': case '\\': case '/':
        if (out) g_string_append_c(out, e);
        break;
      case 'b': if (out) g_string_append_c(out, '\b'); break;
      case 'f': if (out) g_string_append_c(out, '\f'); break;
      case 'n': if (out) g_string_append_c(out, '\n'); break;
      case 'r': if (out) g_string_append_c(out, '\r'); break;
      case 't': if (out) g_string_append_c(out, '\t'); break;
      case 'u': {
        guint32 cp;
        if (!read_hex4(ps, &cp)) return FALSE;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
          guint32 lo;
          if (ps->end - ps->p < 2 || ps->p[0] != '\\' || ps->p[1] != 'u')
            return fail(ps, "header JSON: lone surrogate in a string");
          ps->p += 2;
          if (!read_hex4(ps, &lo)) return FALSE;
          if (lo < 0xDC00 || lo > 0xDFFF) return fail(ps, "header JSON: bad surrogate pair");
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
          return fail(ps, "header JSON: lone surrogate in a string");
        }
        if (cp == 0) return fail(ps, "header JSON: NUL character in a string");
        if (out) g_string_append_unichar(out, cp);
        break;
      }
      default:
        return fail(ps, "header JSON: bad escape '\\%c'", e);
    }
  }
}

/* A JSON number that must be a non-negative integer fitting in int64. */
static gboolean parse_uint(Parser *ps, const char *what, uint64_t *out) {
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == '-') return fail(ps, "%s is negative", what);
  if (ps->p >= ps->end || *ps->p < '0' || *ps->p > '9') return fail(ps, "%s is not an integer", what);
  uint64_t v = 0;
  const char *start = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
    unsigned d = (unsigned)(*ps->p - '0');
    if (v > ((uint64_t)INT64_MAX - d) / 10) return fail(ps, "%s is too large", what);
    v = v * 10 + d;
    ps->p++;
  }
  if (ps->p - start > 1 && *start == '0') return fail(ps, "%s has a leading zero", what);
  if (ps->p < ps->end && (*ps->p == '.' || *ps->p == 'e' || *ps->p == 'E'))
    return fail(ps, "%s is not an integer", what);
  *out = v;
  return TRUE;
}

static gboolean skip_value(Parser *ps, int depth);

static gboolean skip_literal(Parser *ps, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) return fail(ps, "header JSON: invalid value");
  ps->p += n;
  return TRUE;
}

static gboolean skip_number(Parser *ps) {
  if (ps->p < ps->end && *ps->p == '-') ps->p++;
  const char *d = ps->p;
  while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
  if (ps->p == d) return fail(ps, "header JSON: invalid number");
  if (ps->p < ps->end && *ps->p == '.') {
    ps->p++;
    const char *f = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p == f) return fail(ps, "header JSON: invalid number");
  }
  if (ps->p < ps->end && (*ps->p == 'e' || *ps->p == 'E')) {
    ps->p++;
    if (ps->p < ps->end && (*ps->p == '+' || *ps->p == '-')) ps->p++;
    const char *x = ps->p;
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') ps->p++;
    if (ps->p == x) return fail(ps, "header JSON: invalid number");
  }
  return TRUE;
}

static gboolean skip_value(Parser *ps, int depth) {
  if (depth > ST_MAX_SKIP_DEPTH) return fail(ps, "header JSON nests too deeply");
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "header JSON ends early");
  char c = *ps->p;
  if (c == '"') return parse_string(ps, NULL);
  if (c == 't') return skip_literal(ps, "true");
  if (c == 'f') return skip_literal(ps, "false");
  if (c == 'n') return skip_literal(ps, "null");
  if (c == '-' || (c >= '0' && c <= '9')) return skip_number(ps);
  if (c == '[' || c == '{') {
    char close = c == '[' ? ']' : '}';
    ps->p++;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
      ps->p++;
      return TRUE;
    }
    for (;;) {
      if (c == '{') {
        if (!parse_string(ps, NULL) || !expect(ps, ':')) return FALSE;
      }
      if (!skip_value(ps, depth + 1)) return FALSE;
      skip_ws(ps);
      if (ps->p >= ps->end) return fail(ps, "header JSON ends early");
      if (*ps->p == ',') {
        ps->p++;
        continue;
      }
      if (*ps->p == close) {
        ps->p++;
        return TRUE;
      }
      return fail(ps, "header JSON: expected ',' or '%c'", close);
    }
  }
  return fail(ps, "header JSON: invalid value");
}

/* Iterates the members of an object: call with *first = TRUE; returns TRUE and the key in `key`
 * while there is a member (ps->p then points at its value), FALSE at '}' (with msg empty) or on error. */
static gboolean next_member(Parser *ps, gboolean *first, GString *key) {
  skip_ws(ps);
  if (ps->p >= ps->end) return fail(ps, "header JSON ends early");
  if (*first) {
    *first = FALSE;
    if (*ps->p == '}') {
      ps->p++;
      return FALSE;
    }
  } else {
    if (*ps->p == '}') {
      ps->p++;
      return FALSE;
    }
    if (*ps->p != ',') return fail(ps, "header JSON: expected ',' or '}'");
    ps->p++;
  }
  g_string_truncate(key, 0);
  if (!parse_string(ps, key)) return FALSE;
  if (!expect(ps, ':')) return FALSE;
  return TRUE;
}

static gboolean parse_metadata(Parser *ps) {
  skip_ws(ps);
  if (ps->p >= ps->end || *ps->p != '{') return fail(ps, "__metadata__ is not an object");
  ps->p++;
  GString *key = g_string_new(NULL);
  GHashTable *seen = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
  gboolean first = TRUE, ok = TRUE;
  while (next_member(ps, &first, key)) {
    if (!g_hash_table_add(seen, g_strdup(key->str))) {
      ok = fail(ps, "__metadata__ has the key '%s' twice", key->str);
      break;
    }
    skip_ws(ps);
    if (ps->p >= ps->end || *ps->p != '"') {
      ok = fail(ps, "__metadata__ value of '%s' is not a string", key->str);
      break;
    }
    if (!parse_string(ps, NULL)) {
      ok = FALSE;
      break;
    }
  }
  if (ps->msg->len) ok = FALSE;
  g_hash_table_unref(seen);
  g_string_free(key, TRUE);
  return ok;
}

typedef struct {
  uint64_t begin, end;
} Range;

/* One tensor entry {"dtype": ..., "shape": [...], "data_offsets": [b, e]}; name for messages. */
static gboolean parse_entry(Parser *ps, const char *name, StTensor *t, Range *r) {
  if (!expect(ps, '{')) {
    g_string_truncate(ps->msg, 0);
    return fail(ps, "tensor '%s': entry is not an object", name);
  }
  GString *key = g_string_new(NULL), *val = g_string_new(NULL);
  gboolean first = TRUE, have_dtype = FALSE, have_shape = FALSE, have_offsets = FALSE, ok = TRUE;
  while (ok && next_member(ps, &first, key)) {
    if (strcmp(key->str, "dtype") == 0) {
      if (have_dtype) { ok = fail(ps, "tensor '%s': 'dtype' given twice", name); break; }
      have_dtype = TRUE;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != '"') { ok = fail(ps, "tensor '%s': 'dtype' is not a string", name); break; }
      g_string_truncate(val, 0);
      if (!parse_string(ps, val)) { ok = FALSE; break; }
      gboolean known = FALSE;
      for (size_t i = 0; i < G_N_ELEMENTS(dtype_table); i++)
        if (strcmp(val->str, dtype_table[i].name) == 0) {
          t->dtype = dtype_table[i].dtype;
          known = TRUE;
        }
      if (!known) {
        char *esc = g_strescape(val->str, NULL);
        ok = fail(ps, "tensor '%s': unsupported dtype '%s' (supported: BF16, F16, F32, I32, I64, U8)", name, esc);
        g_free(esc);
      }
    } else if (strcmp(key->str, "shape") == 0) {
      if (have_shape) { ok = fail(ps, "tensor '%s': 'shape' given twice", name); break; }
      have_shape = TRUE;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != '[') { ok = fail(ps, "tensor '%s': 'shape' is not an array", name); break; }
      ps->p++;
      t->ndim = 0;
      skip_ws(ps);
      if (ps->p < ps->end && *ps->p == ']') {
        ps->p++;
        continue;
      }
      for (;;) {
        if (t->ndim == ST_MAX_DIMS) { ok = fail(ps, "tensor '%s': more than %d dimensions", name, ST_MAX_DIMS); break; }
        uint64_t d;
        char *what = g_strdup_printf("tensor '%s': dimension %d", name, t->ndim);
        ok = parse_uint(ps, what, &d);
        g_free(what);
        if (!ok) break;
        t->shape[t->ndim++] = (int64_t)d;
        skip_ws(ps);
        if (ps->p < ps->end && *ps->p == ',') { ps->p++; continue; }
        if (ps->p < ps->end && *ps->p == ']') { ps->p++; break; }
        ok = fail(ps, "tensor '%s': malformed 'shape'", name);
        break;
      }
    } else if (strcmp(key->str, "data_offsets") == 0) {
      if (have_offsets) { ok = fail(ps, "tensor '%s': 'data_offsets' given twice", name); break; }
      have_offsets = TRUE;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != '[') { ok = fail(ps, "tensor '%s': 'data_offsets' is not an array", name); break; }
      ps->p++;
      char *what = g_strdup_printf("tensor '%s': data offset", name);
      ok = parse_uint(ps, what, &r->begin) && expect(ps, ',') && parse_uint(ps, what, &r->end);
      g_free(what);
      if (ok) {
        skip_ws(ps);
        if (ps->p >= ps->end || *ps->p != ']') ok = fail(ps, "tensor '%s': 'data_offsets' must hold exactly 2 integers", name);
        else ps->p++;
      } else {
        g_string_truncate(ps->msg, 0);
        ok = fail(ps, "tensor '%s': 'data_offsets' must hold exactly 2 non-negative integers", name);
      }
    } else {
      ok = skip_value(ps, 1);
    }
  }
  if (ps->msg->len) ok = FALSE;
  if (ok && !have_dtype) ok = fail(ps, "tensor '%s': 'dtype' missing", name);
  if (ok && !have_shape) ok = fail(ps, "tensor '%s': 'shape' missing", name);
  if (ok && !have_offsets) ok = fail(ps, "tensor '%s': 'data_offsets' missing", name);
  g_string_free(key, TRUE);
  g_string_free(val, TRUE);
  return ok;
}

static int range_cmp(const void *a, const void *b, void *user) {
  const Range *r = user;
  guint ia = *(const guint *)a, ib = *(const guint *)b;
  if (r[ia].begin != r[ib].begin) return r[ia].begin < r[ib].begin ? -1 : 1;
  return ia < ib ? -1 : ia > ib;
}

/* ------------------------------------------------------------------------------------------- */

void safetensors_close(StFile *f) {
  if (!f) return;
  if (f->tensors)
    for (guint i = 0; i < f->n_tensors; i++) g_free((char *)f->tensors[i].name);
  g_free(f->tensors);
  if (f->by_name) g_hash_table_unref(f->by_name);
  if (f->map) munmap(f->map, f->map_size);
  g_free(f->path);
  g_free(f);
}

static gboolean parse_header(StFile *f, const char *hdr, uint64_t hlen, GError **error) {
  if (!g_utf8_validate_len(hdr, hlen, NULL)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: the safetensors header is not valid UTF-8",
                f->path);
    return FALSE;
  }
  Parser ps = {hdr, hdr + hlen, hdr, g_string_new(NULL)};
  GArray *tensors = g_array_new(FALSE, TRUE, sizeof(StTensor));
  GArray *ranges = g_array_new(FALSE, TRUE, sizeof(Range));
  GString *key = g_string_new(NULL);
  gboolean have_meta = FALSE, ok = TRUE;
  JfLoadError code = JF_LOAD_ERROR_FORMAT;
  f->by_name = g_hash_table_new(g_str_hash, g_str_equal);

  skip_ws(&ps);
  if (ps.p >= ps.end || *ps.p != '{') {
    ok = fail(&ps, "the safetensors header is not a JSON object");
  } else {
    ps.p++;
    gboolean first = TRUE;
    while (ok && next_member(&ps, &first, key)) {
      if (strcmp(key->str, "__metadata__") == 0) {
        if (have_meta) ok = fail(&ps, "header has '__metadata__' twice");
        have_meta = TRUE;
        if (ok) ok = parse_metadata(&ps);
        continue;
      }
      char *name = g_strdup(key->str);
      if (g_hash_table_contains(f->by_name, name)) {
        ok = fail(&ps, "tensor '%s' appears twice in the header", name);
        g_free(name);
        break;
      }
      if (tensors->len >= ST_MAX_TENSORS) {
        code = JF_LOAD_ERROR_LIMIT;
        ok = fail(&ps, "more than %u tensors", ST_MAX_TENSORS);
        g_free(name);
        break;
      }
      StTensor t = {0};
      Range r = {0};
      t.name = name;
      g_array_append_val(tensors, t);  /* owned by the array from here on (freed on error) */
      StTensor *tp = &g_array_index(tensors, StTensor, tensors->len - 1);
      if (!parse_entry(&ps, name, tp, &r)) {
        ok = FALSE;
        break;
      }
      g_array_append_val(ranges, r);
      g_hash_table_insert(f->by_name, name, GUINT_TO_POINTER(tensors->len));
    }
    if (ps.msg->len) ok = FALSE;
    if (ok) {
      skip_ws(&ps);
      if (ps.p != ps.end) ok = fail(&ps, "the safetensors header has bytes after the JSON object");
    }
  }

  /* Shapes against byte ranges, with overflow-checked arithmetic. */
  for (guint i = 0; ok && i < tensors->len; i++) {
    StTensor *t = &g_array_index(tensors, StTensor, i);
    Range *r = &g_array_index(ranges, Range, i);
    uint64_t n = 1;
    for (int d = 0; d < t->ndim; d++) {
      if (t->shape[d] != 0 && n > UINT64_MAX / (uint64_t)t->shape[d]) {
        ok = fail(&ps, "tensor '%s': element count overflows", t->name);
        break;
      }
      n *= (uint64_t)t->shape[d];
    }
    if (!ok) break;
    unsigned es = dtype_size(t->dtype);
    if (n > UINT64_MAX / es) {
      ok = fail(&ps, "tensor '%s': byte size overflows", t->name);
      break;
    }
    t->n_elements = n;
    t->n_bytes = n * es;
    if (r->begin > r->end) {
      ok = fail(&ps, "tensor '%s': data_offsets [%" G_GUINT64_FORMAT ", %" G_GUINT64_FORMAT "] are reversed",
                t->name, r->begin, r->end);
    } else if (r->end > f->data_size) {
      ok = fail(&ps,
                "tensor '%s': data_offsets end %" G_GUINT64_FORMAT " is past the end of the data (%" G_GUINT64_FORMAT
                " bytes; file truncated?)",
                t->name, r->end, f->data_size);
    } else if (r->end - r->begin != t->n_bytes) {
      ok = fail(&ps,
                "tensor '%s': shape and dtype %s need %" G_GUINT64_FORMAT " bytes but data_offsets span %" G_GUINT64_FORMAT,
                t->name, safetensors_dtype_name(t->dtype), t->n_bytes, r->end - r->begin);
    } else {
      t->data = f->data + r->begin;
    }
  }
  /* Overlaps: sorted by begin, each non-empty range must start at or after the previous end. */
  if (ok && tensors->len > 1) {
    guint *order = g_new(guint, tensors->len);
    for (guint i = 0; i < tensors->len; i++) order[i] = i;
    g_qsort_with_data(order, (gint)tensors->len, sizeof(guint), range_cmp, ranges->data);
    const Range *rs = (const Range *)ranges->data;
    gint64 prev = -1;
    for (guint k = 0; k < tensors->len; k++) {
      guint i = order[k];
      if (rs[i].begin == rs[i].end) continue;
      if (prev >= 0 && rs[i].begin < rs[prev].end) {
        ok = fail(&ps, "tensors '%s' and '%s' overlap in the data section",
                  g_array_index(tensors, StTensor, prev).name, g_array_index(tensors, StTensor, i).name);
        break;
      }
      prev = i;
    }
    g_free(order);
  }

  f->n_tensors = tensors->len;
  f->tensors = (StTensor *)g_array_free(tensors, FALSE);
  g_array_free(ranges, TRUE);
  g_string_free(key, TRUE);
  if (!ok) g_set_error(error, JF_LOAD_ERROR, code, "%s: %s", f->path, ps.msg->str);
  g_string_free(ps.msg, TRUE);
  return ok;
}

StFile *safetensors_open(const char *path, GError **error) {
  g_return_val_if_fail(path != NULL, NULL);
  StFile *f = g_new0(StFile, 1);
  f->path = g_strdup(path);
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int e = errno;
    g_set_error(error, JF_LOAD_ERROR, e == ENOENT ? JF_LOAD_ERROR_MISSING : JF_LOAD_ERROR_IO, "%s: %s", path,
                g_strerror(e));
    safetensors_close(f);
    return NULL;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: not a regular file", path);
    close(fd);
    safetensors_close(f);
    return NULL;
  }
  uint64_t size = (uint64_t)st.st_size;
  if (size < 8) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT,
                "%s: %" G_GUINT64_FORMAT " bytes is too short for a safetensors file (truncated?)", path, size);
    close(fd);
    safetensors_close(f);
    return NULL;
  }
  if (size > SIZE_MAX) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "%s: file too large to map", path);
    close(fd);
    safetensors_close(f);
    return NULL;
  }
  void *m = mmap(NULL, (size_t)size, PROT_READ, MAP_PRIVATE, fd, 0);
  int e = errno;
  close(fd);
  if (m == MAP_FAILED) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: mmap failed: %s", path, g_strerror(e));
    safetensors_close(f);
    return NULL;
  }
  f->map = m;
  f->map_size = (size_t)size;
  const uint8_t *base = m;
  uint64_t hlen = 0;
  for (int i = 7; i >= 0; i--) hlen = hlen << 8 | base[i];
  if (hlen > ST_MAX_HEADER) {
    g_set_error(error, JF_LOAD_ERROR, hlen > size - 8 ? JF_LOAD_ERROR_FORMAT : JF_LOAD_ERROR_LIMIT,
                "%s: header length %" G_GUINT64_FORMAT " exceeds the 100 MiB bound%s", path, hlen,
                hlen > size - 8 ? " and the file size (not a safetensors file, or truncated)" : "");
    safetensors_close(f);
    return NULL;
  }
  if (hlen > size - 8) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT,
                "%s: header length %" G_GUINT64_FORMAT " is past the end of the %" G_GUINT64_FORMAT
                "-byte file (truncated, or not a safetensors file)",
                path, hlen, size);
    safetensors_close(f);
    return NULL;
  }
  f->data = base + 8 + hlen;
  f->data_size = size - 8 - hlen;
  if (!parse_header(f, (const char *)base + 8, hlen, error)) {
    safetensors_close(f);
    return NULL;
  }
  /* Weights are read once, front to back, when uploading. */
  madvise(m, (size_t)size, MADV_SEQUENTIAL);
  return f;
}

const char *safetensors_path(const StFile *f) { return f->path; }
guint safetensors_n_tensors(const StFile *f) { return f->n_tensors; }

const StTensor *safetensors_tensor(const StFile *f, guint i) {
  g_return_val_if_fail(i < f->n_tensors, NULL);
  return &f->tensors[i];
}

const StTensor *safetensors_find(const StFile *f, const char *name) {
  gpointer v = g_hash_table_lookup(f->by_name, name);
  return v ? &f->tensors[GPOINTER_TO_UINT(v) - 1] : NULL;
}

static void append_shape(GString *s, int ndim, const int64_t *shape) {
  g_string_append_c(s, '[');
  for (int i = 0; i < ndim; i++) {
    if (i) g_string_append(s, ", ");
    if (shape[i] < 0) g_string_append_c(s, '*');
    else g_string_append_printf(s, "%" G_GINT64_FORMAT, shape[i]);
  }
  g_string_append_c(s, ']');
}

const StTensor *safetensors_require(const StFile *f, const char *name, int ndim, const int64_t *shape,
                                    GError **error) {
  const StTensor *t = safetensors_find(f, name);
  if (!t) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING, "%s: tensor '%s' is missing", f->path, name);
    return NULL;
  }
  if (ndim < 0) return t;
  gboolean same = t->ndim == ndim;
  for (int i = 0; same && i < ndim; i++)
    if (shape && shape[i] >= 0 && shape[i] != t->shape[i]) same = FALSE;
  if (!same) {
    GString *s = g_string_new(NULL);
    g_string_append_printf(s, "%s: tensor '%s' has shape ", f->path, name);
    append_shape(s, t->ndim, t->shape);
    g_string_append(s, ", expected ");
    if (shape) append_shape(s, ndim, shape);
    else g_string_append_printf(s, "%d dimensions", ndim);
    g_set_error_literal(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, s->str);
    g_string_free(s, TRUE);
    return NULL;
  }
  return t;
}

/* ---------------------------------------------------------------------------------------------
 * Conversions. Tensor data may sit at any byte offset (the data section starts at 8 + N), so every
 * element is read with memcpy. */

static inline uint16_t f32_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x0040u);  /* NaN stays a (quiet) NaN */
  u += 0x7fffu + ((u >> 16) & 1u);  /* round to nearest, ties to even; overflow correctly gives inf */
  return (uint16_t)(u >> 16);
}

static inline float bf16_to_f32(uint16_t h) {
  uint32_t u = (uint32_t)h << 16;
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static inline float f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, u;
  if (exp == 0x1f) {
    u = sign | 0x7f800000u | (man << 13);
  } else if (exp == 0) {
    if (man == 0) {
      u = sign;
    } else {  /* subnormal: normalise */
      int e = -1;
      do {
        e++;
        man <<= 1;
      } while (!(man & 0x400u));
      u = sign | ((uint32_t)(127 - 15 - e) << 23) | ((man & 0x3ffu) << 13);
    }
  } else {
    u = sign | ((exp + 127 - 15) << 23) | (man << 13);
  }
  float x;
  memcpy(&x, &u, 4);
  return x;
}

static inline float element_f32(const uint8_t *p, StDtype d) {
  switch (d) {
    case ST_DTYPE_BF16: { uint16_t h; memcpy(&h, p, 2); return bf16_to_f32(h); }
    case ST_DTYPE_F16: { uint16_t h; memcpy(&h, p, 2); return f16_to_f32(h); }
    case ST_DTYPE_F32: { float x; memcpy(&x, p, 4); return x; }
    case ST_DTYPE_I32: { int32_t v; memcpy(&v, p, 4); return (float)v; }
    case ST_DTYPE_I64: { int64_t v; memcpy(&v, p, 8); return (float)v; }
    case ST_DTYPE_U8: return (float)*p;
  }
  return 0.0f;
}

void safetensors_to_bf16(const StTensor *t, uint16_t *out) {
  const uint8_t *p = t->data;
  if (t->dtype == ST_DTYPE_BF16) {
    memcpy(out, p, t->n_bytes);
    return;
  }
  unsigned es = dtype_size(t->dtype);
  for (uint64_t i = 0; i < t->n_elements; i++) out[i] = f32_to_bf16(element_f32(p + i * es, t->dtype));
}

void safetensors_to_f32(const StTensor *t, float *out) {
  const uint8_t *p = t->data;
  if (t->dtype == ST_DTYPE_F32) {
    memcpy(out, p, t->n_bytes);
    return;
  }
  unsigned es = dtype_size(t->dtype);
  for (uint64_t i = 0; i < t->n_elements; i++) out[i] = element_f32(p + i * es, t->dtype);
}
