/* npy: round trips, the exact header bytes numpy writes, the fixture arrays, hostile headers. */
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "npy.h"
#include "test_util.h"
#include "safetensors.h"  /* JF_LOAD_ERROR */

static char *tmp_dir;

/* Plain write: g_file_set_contents may fsync, far too slow for the fuzz loops. */
static gboolean put_file(const char *path, const void *data, gssize len) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return FALSE;
  size_t n = len < 0 ? strlen(data) : (size_t)len;
  gboolean ok = fwrite(data, 1, n, fp) == n;
  return fclose(fp) == 0 && ok;
}

#define HAS(buf, n, lit) memmem(buf, n, lit, sizeof lit - 1)

static char *tmp_path(const char *name) { return g_build_filename(tmp_dir, name, NULL); }

static void test_header_bytes(void) {
  char *p = tmp_path("h.npy");
  float v[5] = {1, 2, 3, 4, 5};
  GError *e = NULL;
  g_assert_true(npy_write(p, NPY_F32, 1, (int64_t[]){5}, v, &e));
  g_assert_no_error(e);
  char *bytes;
  gsize len;
  g_assert_true(g_file_get_contents(p, &bytes, &len, NULL));
  /* numpy.save(np.arange(1, 6, dtype='<f4')) */
  static const char expect[] =
      "\x93NUMPY\x01\x00\x76\x00{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }";
  g_assert_cmpuint(len, ==, 128 + 20);
  g_assert_cmpmem(bytes, sizeof expect - 1, expect, sizeof expect - 1);
  for (gsize i = sizeof expect - 1; i < 127; i++) g_assert_cmpint(bytes[i], ==, ' ');
  g_assert_cmpint(bytes[127], ==, '\n');
  g_assert_cmpmem(bytes + 128, 20, v, 20);
  g_free(bytes);

  /* 3-D int32: no trailing comma; 0-D: () */
  int32_t iv[6] = {1, -2, 3, -4, 5, -6};
  g_assert_true(npy_write(p, NPY_I32, 3, (int64_t[]){1, 2, 3}, iv, &e));
  g_assert_true(g_file_get_contents(p, &bytes, &len, NULL));
  g_assert_nonnull(HAS(bytes, 128, "{'descr': '<i4', 'fortran_order': False, 'shape': (1, 2, 3), }"));
  g_assert_cmpuint((len - 24) % 64, ==, 0);
  g_free(bytes);
  uint8_t u = 200;
  g_assert_true(npy_write(p, NPY_U8, 0, NULL, &u, &e));
  g_assert_true(g_file_get_contents(p, &bytes, &len, NULL));
  g_assert_nonnull(HAS(bytes, 128, "{'descr': '|u1', 'fortran_order': False, 'shape': (), }"));
  g_free(bytes);
  g_free(p);
}

static void roundtrip(NpyDtype dt, int ndim, const int64_t *shape, size_t es) {
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++) n *= (uint64_t)shape[i];
  uint8_t *buf = g_malloc(n * es + 1);
  for (uint64_t i = 0; i < n * es; i++) buf[i] = (uint8_t)(i * 131 + 7);
  char *p = tmp_path("rt.npy");
  GError *e = NULL;
  g_assert_true(npy_write(p, dt, ndim, shape, buf, &e));
  g_assert_no_error(e);
  NpyArray *a = npy_read(p, &e);
  g_assert_no_error(e);
  g_assert_true(a->dtype == dt);
  g_assert_cmpint(a->ndim, ==, ndim);
  for (int i = 0; i < ndim; i++) g_assert_cmpint(a->shape[i], ==, shape[i]);
  g_assert_cmpuint(a->n_elements, ==, n);
  if (n) g_assert_cmpmem(a->data, n * es, buf, n * es);
  npy_array_free(a);
  g_free(p);
  g_free(buf);
}

static void test_roundtrip(void) {
  roundtrip(NPY_F32, 3, (int64_t[]){4, 8, 8}, 4);
  roundtrip(NPY_I32, 1, (int64_t[]){93}, 4);
  roundtrip(NPY_I64, 2, (int64_t[]){1, 41}, 8);
  roundtrip(NPY_U8, 3, (int64_t[]){64, 64, 3}, 1);
  roundtrip(NPY_F32, 0, NULL, 4);
  roundtrip(NPY_F32, 2, (int64_t[]){0, 7}, 4);
  roundtrip(NPY_F32, 8, (int64_t[]){1, 2, 1, 2, 1, 2, 1, 2}, 4);
  /* a long shape that pushes the header over one 64-byte block */
  roundtrip(NPY_U8, 8, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 100000}, 1);
}

static void test_fixture(void) {
  GError *e = NULL;
  char *p = test_data_path("tiny/inputs/noise.npy");
  NpyArray *a = npy_read(p, &e);
  g_assert_no_error(e);
  g_assert_true(a->dtype == NPY_F32);
  g_assert_cmpint(a->ndim, ==, 3);
  g_assert_cmpint(a->shape[0], ==, 4);
  g_assert_cmpint(a->shape[1], ==, 8);
  g_assert_cmpint(a->shape[2], ==, 8);
  npy_array_free(a);
  g_free(p);
  p = test_data_path("tiny/expected/chat_text/prompt_ids.npy");
  a = npy_read(p, &e);
  g_assert_no_error(e);
  g_assert_true(npy_array_to_i32(a, &e));
  g_assert_cmpint(a->ndim, ==, 1);
  g_assert_cmpint(a->shape[0], ==, 93);
  g_assert_cmpint(((int32_t *)a->data)[0], ==, 596);  /* BOS */
  npy_array_free(a);
  g_free(p);
}

static void test_to_i32(void) {
  int64_t v[3] = {1, -5, 100001};
  char *p = tmp_path("i64.npy");
  GError *e = NULL;
  g_assert_true(npy_write(p, NPY_I64, 1, (int64_t[]){3}, v, &e));
  NpyArray *a = npy_read(p, &e);
  g_assert_no_error(e);
  g_assert_true(npy_array_to_i32(a, &e));
  g_assert_true(a->dtype == NPY_I32);
  g_assert_cmpint(((int32_t *)a->data)[1], ==, -5);
  g_assert_cmpint(((int32_t *)a->data)[2], ==, 100001);
  npy_array_free(a);
  v[0] = (int64_t)1 << 40;
  g_assert_true(npy_write(p, NPY_I64, 1, (int64_t[]){3}, v, &e));
  a = npy_read(p, &e);
  g_assert_false(npy_array_to_i32(a, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_LIMIT);
  g_clear_error(&e);
  npy_array_free(a);
  g_free(p);
}

/* Builds magic + version + length + header (+ data) and expects an error naming the file. */
static void expect_bad(const char *name, int major, const char *header, gssize hlen_override, size_t data_len,
                       JfLoadError code) {
  GByteArray *b = g_byte_array_new();
  g_byte_array_append(b, (const guint8 *)"\x93NUMPY", 6);
  uint8_t ver[2] = {(uint8_t)major, 0};
  g_byte_array_append(b, ver, 2);
  uint32_t hl = hlen_override >= 0 ? (uint32_t)hlen_override : (uint32_t)strlen(header);
  uint8_t l[4] = {(uint8_t)hl, (uint8_t)(hl >> 8), (uint8_t)(hl >> 16), (uint8_t)(hl >> 24)};
  g_byte_array_append(b, l, major == 1 ? 2 : 4);
  g_byte_array_append(b, (const guint8 *)header, (guint)strlen(header));
  for (size_t i = 0; i < data_len; i++) g_byte_array_append(b, (const guint8 *)"\0", 1);
  char *p = tmp_path(name);
  g_assert_true(put_file(p, (const char *)b->data, b->len));
  GError *e = NULL;
  NpyArray *a = npy_read(p, &e);
  if (a) g_error("%s: read succeeded", name);
  if (!g_error_matches(e, JF_LOAD_ERROR, code)) g_error("%s: code %d '%s', expected %d", name, e->code, e->message, code);
  g_assert_nonnull(strstr(e->message, p));
  g_test_message("%s", e->message);
  g_error_free(e);
  g_free(p);
  g_byte_array_unref(b);
}

static void test_hostile(void) {
  const JfLoadError F = JF_LOAD_ERROR_FORMAT;
  expect_bad("fortran.npy", 1, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", -1, 16, F);
  expect_bad("big-endian.npy", 1, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", -1, 8, F);
  expect_bad("f8.npy", 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", -1, 16, F);
  expect_bad("object.npy", 1, "{'descr': '|O', 'fortran_order': False, 'shape': (2,), }", -1, 16, F);
  expect_bad("struct.npy", 1, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (2,), }", -1, 16, F);
  expect_bad("negative.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", -1, 8, F);
  expect_bad("overflow.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296, 4294967296), }",
             -1, 8, F);
  expect_bad("huge-dim.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999,), }", -1, 8, F);
  expect_bad("bytes-overflow.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4611686018427387904,), }", -1,
             8, F);
  expect_bad("too-many-dims.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1), }", -1, 4,
             F);
  expect_bad("truncated-data.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 3), }", -1, 35, F);
  expect_bad("missing-key.npy", 1, "{'descr': '<f4', 'shape': (3,), }", -1, 12, F);
  expect_bad("dup-key.npy", 1, "{'descr': '<f4', 'descr': '<i4', 'fortran_order': False, 'shape': (3,), }", -1, 12, F);
  expect_bad("not-dict.npy", 1, "[1, 2, 3]", -1, 12, F);
  expect_bad("garbage.npy", 1, "\xff\xfe\x00garbage", -1, 12, F);
  expect_bad("unterminated.npy", 1, "{'descr': '<f4", -1, 0, F);
  expect_bad("shape-str.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': 'abc', }", -1, 0, F);
  expect_bad("hlen-past.npy", 1, "{}", 5000, 0, F);
  expect_bad("hlen-limit.npy", 2, "{}", 0x7fffffff, 0, JF_LOAD_ERROR_LIMIT);
  expect_bad("version4.npy", 4, "{}", -1, 0, F);
  expect_bad("version0.npy", 0, "{}", -1, 0, F);

  /* bad magic, short files */
  const char *shorts[] = {"", "\x93NUM", "\x93NUMPY\x01", "\x93NUMPY\x01\x00\x10", "PK\x03\x04 zipfile......."};
  for (size_t i = 0; i < G_N_ELEMENTS(shorts); i++) {
    char *name = g_strdup_printf("short-%zu.npy", i);
    char *p = tmp_path(name);
    g_assert_true(put_file(p, shorts[i], (gssize)strlen(shorts[i]) + (i == 2 ? 1 : 0)));
    GError *e = NULL;
    g_assert_null(npy_read(p, &e));
    g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_FORMAT);
    g_assert_nonnull(strstr(e->message, p));
    g_error_free(e);
    g_free(p);
    g_free(name);
  }
  GError *e = NULL;
  char *p = tmp_path("missing.npy");
  g_assert_null(npy_read(p, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING);
  g_assert_nonnull(strstr(e->message, p));
  g_clear_error(&e);
  g_free(p);
  g_assert_null(npy_read(tmp_dir, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_IO);
  g_clear_error(&e);
  /* writing into a folder that does not exist */
  p = g_build_filename(tmp_dir, "no", "such", "x.npy", NULL);
  float v = 0;
  g_assert_false(npy_write(p, NPY_F32, 1, (int64_t[]){1}, &v, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_IO);
  g_assert_nonnull(strstr(e->message, p));
  g_clear_error(&e);
  g_free(p);
}

static void test_accepts_variants(void) {
  /* double quotes, keys in another order, no trailing comma, v2 and v3 headers, '<u1' */
  const struct {
    int major;
    const char *h;
  } ok[] = {
    {1, "{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<i4\"}"},
    {2, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }\n"},
    {3, "{'descr': '<i4', 'fortran_order': False, 'shape': (2L,), }   \n"},
  };
  for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
    GByteArray *b = g_byte_array_new();
    g_byte_array_append(b, (const guint8 *)"\x93NUMPY", 6);
    uint8_t ver[2] = {(uint8_t)ok[i].major, 0};
    g_byte_array_append(b, ver, 2);
    uint32_t hl = (uint32_t)strlen(ok[i].h);
    uint8_t l[4] = {(uint8_t)hl, (uint8_t)(hl >> 8), 0, 0};
    g_byte_array_append(b, l, ok[i].major == 1 ? 2 : 4);
    g_byte_array_append(b, (const guint8 *)ok[i].h, hl);
    int32_t d[2] = {7, -7};
    g_byte_array_append(b, (const guint8 *)d, 8);
    char *p = tmp_path("variant.npy");
    g_assert_true(put_file(p, (const char *)b->data, b->len));
    GError *e = NULL;
    NpyArray *a = npy_read(p, &e);
    g_assert_no_error(e);
    g_assert_true(a->dtype == NPY_I32);
    g_assert_cmpint(((int32_t *)a->data)[1], ==, -7);
    npy_array_free(a);
    g_free(p);
    g_byte_array_unref(b);
  }
}

static void test_fuzz(void) {
  char *src = tmp_path("fuzz-src.npy");
  float v[6] = {1, 2, 3, 4, 5, 6};
  g_assert_true(npy_write(src, NPY_F32, 2, (int64_t[]){2, 3}, v, NULL));
  char *bytes;
  gsize len;
  g_assert_true(g_file_get_contents(src, &bytes, &len, NULL));
  char *p = tmp_path("fuzz.npy"), *mut = g_malloc(len);
  int ok = 0, bad = 0;
  for (int it = 0; it < 2000; it++) {
    memcpy(mut, bytes, len);
    int flips = g_test_rand_int_range(1, 4);
    for (int k = 0; k < flips; k++) {
      gsize at = (gsize)g_test_rand_int_range(0, 80);
      const char pool[] = "{}()',:0123456789- TFLu<>|fi";
      mut[at] = g_test_rand_bit() ? (char)g_test_rand_int_range(0, 256) : pool[g_test_rand_int_range(0, sizeof pool - 1)];
    }
    gsize n = g_test_rand_int_range(0, 8) == 0 ? (gsize)g_test_rand_int_range(0, (gint32)len) : len;
    g_assert_true(put_file(p, mut, (gssize)n));
    GError *e = NULL;
    NpyArray *a = npy_read(p, &e);
    if (a) {
      ok++;
      npy_array_free(a);
    } else {
      bad++;
      g_assert_true(e->domain == JF_LOAD_ERROR && strstr(e->message, p));
      g_error_free(e);
    }
  }
  g_test_message("fuzz: %d read, %d rejected", ok, bad);
  g_free(mut);
  g_free(p);
  g_free(bytes);
  g_free(src);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  tmp_dir = test_tmp_dir_new("jf-test-npy-XXXXXX");
  g_test_add_func("/npy/header-bytes", test_header_bytes);
  g_test_add_func("/npy/roundtrip", test_roundtrip);
  g_test_add_func("/npy/fixture", test_fixture);
  g_test_add_func("/npy/to-i32", test_to_i32);
  g_test_add_func("/npy/hostile", test_hostile);
  g_test_add_func("/npy/accepts-variants", test_accepts_variants);
  g_test_add_func("/npy/fuzz", test_fuzz);
  int rc = g_test_run();
  test_rm_rf(tmp_dir);
  g_free(tmp_dir);
  return rc;
}
