/* npy: NumPy .npy files. Writing always produces a v1.0 header (v2.0 only if the header would not
 * fit in 64 KiB), exactly the bytes numpy.save writes. Reading accepts v1/v2/v3 headers with the
 * dtypes of NpyDtype in C order; the header is parsed as a restricted Python dict literal and every
 * size is checked against the file before anything is allocated. */
#include "npy.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"  /* JF_LOAD_ERROR */

#if G_BYTE_ORDER != G_LITTLE_ENDIAN
#error "npy.c assumes a little-endian host"
#endif

/* numpy itself refuses headers above 10000 bytes unless told otherwise; allow more, but bounded. */
#define NPY_MAX_HEADER (1u << 20)
#define NPY_MAX_DIMS 8

static const struct {
  NpyDtype dtype;
  const char *descr;
  unsigned size;
} npy_types[] = {
  {NPY_F32, "<f4", 4},
  {NPY_I32, "<i4", 4},
  {NPY_I64, "<i8", 8},
  {NPY_U8, "|u1", 1},
};

static unsigned npy_dtype_size(NpyDtype d) {
  for (size_t i = 0; i < G_N_ELEMENTS(npy_types); i++)
    if (npy_types[i].dtype == d) return npy_types[i].size;
  return 0;
}

static gboolean count_elements(int ndim, const int64_t *shape, unsigned es, uint64_t *n_out, uint64_t *bytes_out) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) {
    if (shape[i] < 0) return FALSE;
    if (shape[i] != 0 && n > UINT64_MAX / (uint64_t)shape[i]) return FALSE;
    n *= (uint64_t)shape[i];
  }
  if (es && n > UINT64_MAX / es) return FALSE;
  *n_out = n;
  *bytes_out = n * es;
  return TRUE;
}

gboolean npy_write(const char *path, NpyDtype dtype, int ndim, const int64_t *shape, const void *data,
                   GError **error) {
  unsigned es = npy_dtype_size(dtype);
  uint64_t n, nbytes;
  if (es == 0 || ndim < 0 || ndim > NPY_MAX_DIMS || (ndim > 0 && !shape) ||
      !count_elements(ndim, shape, es, &n, &nbytes) || (nbytes > 0 && !data)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: invalid array description for .npy", path);
    return FALSE;
  }
  const char *descr = NULL;
  for (size_t i = 0; i < G_N_ELEMENTS(npy_types); i++)
    if (npy_types[i].dtype == dtype) descr = npy_types[i].descr;

  GString *h = g_string_new(NULL);
  g_string_append_printf(h, "{'descr': '%s', 'fortran_order': False, 'shape': (", descr);
  for (int i = 0; i < ndim; i++) {
    if (i) g_string_append(h, ", ");
    g_string_append_printf(h, "%" G_GINT64_FORMAT, shape[i]);
  }
  if (ndim == 1) g_string_append_c(h, ',');
  g_string_append(h, "), }");
  /* magic(6) + version(2) + length(2 or 4) + header, padded with spaces to a multiple of 64 and
   * terminated by '\n' (numpy's layout). */
  int version = 1;
  size_t prefix = 10;
  size_t total = prefix + h->len + 1;
  total = (total + 63) / 64 * 64;
  if (total - prefix > 65535) {
    version = 2;
    prefix = 12;
    total = (prefix + h->len + 1 + 63) / 64 * 64;
  }
  while (prefix + h->len + 1 < total) g_string_append_c(h, ' ');
  g_string_append_c(h, '\n');

  uint8_t pre[12] = {0x93, 'N', 'U', 'M', 'P', 'Y', (uint8_t)version, 0};
  uint32_t hl = (uint32_t)h->len;
  if (version == 1) {
    pre[8] = (uint8_t)(hl & 0xff);
    pre[9] = (uint8_t)(hl >> 8);
  } else {
    for (int i = 0; i < 4; i++) pre[8 + i] = (uint8_t)(hl >> (8 * i));
  }

  FILE *fp = fopen(path, "wb");
  if (!fp) {
    int e = errno;
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: cannot create: %s", path, g_strerror(e));
    g_string_free(h, TRUE);
    return FALSE;
  }
  gboolean ok = fwrite(pre, 1, prefix, fp) == prefix && fwrite(h->str, 1, h->len, fp) == h->len &&
                (nbytes == 0 || fwrite(data, 1, (size_t)nbytes, fp) == (size_t)nbytes);
  int e = errno;
  if (fclose(fp) != 0 && ok) {
    ok = FALSE;
    e = errno;
  }
  g_string_free(h, TRUE);
  if (!ok) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: write failed: %s", path, g_strerror(e));
    return FALSE;
  }
  return TRUE;
}

/* ---------------------------------------------------------------------------------------------
 * Header dict parser: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } with keys in any
 * order, single or double quotes, optional trailing commas. */

typedef struct {
  const char *p, *end;
} Lex;

static void lex_ws(Lex *l) {
  while (l->p < l->end && (*l->p == ' ' || *l->p == '\t' || *l->p == '\n' || *l->p == '\r')) l->p++;
}

static gboolean lex_char(Lex *l, char c) {
  lex_ws(l);
  if (l->p < l->end && *l->p == c) {
    l->p++;
    return TRUE;
  }
  return FALSE;
}

/* A quoted string without escapes (numpy never writes any here); at most cap-1 bytes kept. */
static gboolean lex_string(Lex *l, char *out, size_t cap) {
  lex_ws(l);
  if (l->p >= l->end || (*l->p != '\'' && *l->p != '"')) return FALSE;
  char q = *l->p++;
  size_t n = 0;
  while (l->p < l->end && *l->p != q) {
    if (*l->p == '\\' || n + 1 >= cap) return FALSE;
    out[n++] = *l->p++;
  }
  if (l->p >= l->end) return FALSE;
  l->p++;
  out[n] = 0;
  return TRUE;
}

static gboolean lex_word(Lex *l, const char *w) {
  lex_ws(l);
  size_t n = strlen(w);
  if ((size_t)(l->end - l->p) < n || memcmp(l->p, w, n) != 0) return FALSE;
  l->p += n;
  return TRUE;
}

static gboolean lex_int(Lex *l, int64_t *out) {
  lex_ws(l);
  if (l->p >= l->end || *l->p < '0' || *l->p > '9') return FALSE;
  int64_t v = 0;
  while (l->p < l->end && *l->p >= '0' && *l->p <= '9') {
    int d = *l->p - '0';
    if (v > (INT64_MAX - d) / 10) return FALSE;
    v = v * 10 + d;
    l->p++;
  }
  /* Python 2 era files may write 3L. */
  if (l->p < l->end && *l->p == 'L') l->p++;
  *out = v;
  return TRUE;
}

static gboolean parse_dict(const char *path, const char *hdr, size_t len, NpyArray *a, GError **error) {
  Lex l = {hdr, hdr + len};
  gboolean have_descr = FALSE, have_order = FALSE, have_shape = FALSE, fortran = FALSE;
  char descr[32] = "";
  const char *bad = NULL;
  if (!lex_char(&l, '{')) bad = "the header is not a dict";
  while (!bad) {
    if (lex_char(&l, '}')) break;
    char key[32];
    if (!lex_string(&l, key, sizeof key) || !lex_char(&l, ':')) {
      bad = "malformed header dict";
      break;
    }
    if (strcmp(key, "descr") == 0 && !have_descr) {
      have_descr = TRUE;
      if (!lex_string(&l, descr, sizeof descr)) bad = "'descr' is not a simple dtype string";
    } else if (strcmp(key, "fortran_order") == 0 && !have_order) {
      have_order = TRUE;
      if (lex_word(&l, "True")) fortran = TRUE;
      else if (!lex_word(&l, "False")) bad = "'fortran_order' is not True/False";
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      have_shape = TRUE;
      if (!lex_char(&l, '(')) {
        bad = "'shape' is not a tuple";
        break;
      }
      a->ndim = 0;
      for (;;) {
        if (lex_char(&l, ')')) break;
        if (a->ndim == NPY_MAX_DIMS) {
          bad = "more than 8 dimensions";
          break;
        }
        if (!lex_int(&l, &a->shape[a->ndim])) {
          bad = "'shape' holds something other than non-negative integers";
          break;
        }
        a->ndim++;
        if (lex_char(&l, ',')) continue;
        if (lex_char(&l, ')')) break;
        bad = "malformed 'shape' tuple";
        break;
      }
    } else {
      bad = "unexpected or repeated key in the header";
    }
    if (bad) break;
    if (lex_char(&l, ',')) continue;
    if (lex_char(&l, '}')) break;
    bad = "malformed header dict";
  }
  if (!bad && (!have_descr || !have_order || !have_shape)) bad = "the header lacks descr, fortran_order or shape";
  if (!bad && fortran) bad = "Fortran-order arrays are not supported (save with C order)";
  if (!bad) {
    gboolean found = FALSE;
    for (size_t i = 0; i < G_N_ELEMENTS(npy_types); i++)
      if (strcmp(descr, npy_types[i].descr) == 0) {
        a->dtype = npy_types[i].dtype;
        found = TRUE;
      }
    /* numpy writes '|u1', but '<u1' means the same. */
    if (!found && strcmp(descr, "<u1") == 0) {
      a->dtype = NPY_U8;
      found = TRUE;
    }
    if (!found) {
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT,
                  "%s: unsupported dtype '%s' (supported: <f4, <i4, <i8, |u1, little-endian)", path, descr);
      return FALSE;
    }
  }
  if (bad) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: %s", path, bad);
    return FALSE;
  }
  return TRUE;
}

NpyArray *npy_read(const char *path, GError **error) {
  FILE *fp = fopen(path, "rb");
  if (!fp) {
    int e = errno;
    g_set_error(error, JF_LOAD_ERROR, e == ENOENT ? JF_LOAD_ERROR_MISSING : JF_LOAD_ERROR_IO, "%s: %s", path,
                g_strerror(e));
    return NULL;
  }
  NpyArray *a = g_new0(NpyArray, 1);
  char *hdr = NULL;
  struct stat st;
  if (fstat(fileno(fp), &st) != 0 || !S_ISREG(st.st_mode)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: not a regular file", path);
    goto fail;
  }
  uint64_t fsize = (uint64_t)st.st_size;
  uint8_t pre[12];
  if (fread(pre, 1, 8, fp) != 8 || memcmp(pre, "\x93NUMPY", 6) != 0) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: not a .npy file (bad magic or truncated)", path);
    goto fail;
  }
  int major = pre[6];
  if (major < 1 || major > 3) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: unsupported .npy version %d.%d", path, major, pre[7]);
    goto fail;
  }
  size_t lenbytes = major == 1 ? 2 : 4;
  if (fread(pre + 8, 1, lenbytes, fp) != lenbytes) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: truncated .npy header", path);
    goto fail;
  }
  uint32_t hlen = 0;
  for (size_t i = 0; i < lenbytes; i++) hlen |= (uint32_t)pre[8 + i] << (8 * i);
  if (hlen > NPY_MAX_HEADER) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "%s: .npy header of %u bytes exceeds the %u-byte bound",
                path, hlen, NPY_MAX_HEADER);
    goto fail;
  }
  uint64_t data_start = 8 + lenbytes + hlen;
  if (data_start > fsize) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: truncated .npy header", path);
    goto fail;
  }
  hdr = g_malloc(hlen + 1);
  if (fread(hdr, 1, hlen, fp) != hlen) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_IO, "%s: read failed", path);
    goto fail;
  }
  hdr[hlen] = 0;
  /* v1/v2 headers are latin-1, v3 UTF-8; the parser only accepts ASCII tokens either way. */
  if (!parse_dict(path, hdr, hlen, a, error)) goto fail;
  uint64_t nbytes;
  if (!count_elements(a->ndim, a->shape, npy_dtype_size(a->dtype), &a->n_elements, &nbytes)) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: element count overflows", path);
    goto fail;
  }
  if (nbytes > fsize - data_start) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT,
                "%s: truncated: the shape needs %" G_GUINT64_FORMAT " data bytes, the file has %" G_GUINT64_FORMAT,
                path, nbytes, fsize - data_start);
    goto fail;
  }
  if (nbytes > 0) {
    a->data = g_try_malloc((gsize)nbytes);
    if (!a->data) {
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "%s: cannot allocate %" G_GUINT64_FORMAT " bytes", path,
                  nbytes);
      goto fail;
    }
    if (fread(a->data, 1, (size_t)nbytes, fp) != (size_t)nbytes) {
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT, "%s: truncated data", path);
      goto fail;
    }
  }
  g_free(hdr);
  fclose(fp);
  return a;
fail:
  g_free(hdr);
  fclose(fp);
  npy_array_free(a);
  return NULL;
}

void npy_array_free(NpyArray *a) {
  if (!a) return;
  g_free(a->data);
  g_free(a);
}

gboolean npy_array_to_i32(NpyArray *a, GError **error) {
  if (a->dtype == NPY_I32) return TRUE;
  if (a->dtype == NPY_F32) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH, "float array where integers were expected");
    return FALSE;
  }
  int32_t *out = g_new(int32_t, a->n_elements ? a->n_elements : 1);
  for (uint64_t i = 0; i < a->n_elements; i++) {
    int64_t v = a->dtype == NPY_I64 ? ((const int64_t *)a->data)[i] : ((const uint8_t *)a->data)[i];
    if (v < INT32_MIN || v > INT32_MAX) {
      g_free(out);
      g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT, "value %" G_GINT64_FORMAT " does not fit in int32", v);
      return FALSE;
    }
    out[i] = (int32_t)v;
  }
  g_free(a->data);
  a->data = out;
  a->dtype = NPY_I32;
  return TRUE;
}
