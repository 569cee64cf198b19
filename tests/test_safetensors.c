/* safetensors reader: the tiny fixture files, dtype conversions at unaligned offsets, and a matrix
 * of hostile files (each must give the right error code and name the file, never crash). */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "safetensors.h"
#include "test_util.h"

static char *tmp_dir;

/* Plain write: g_file_set_contents may fsync, far too slow for the fuzz loops. */
static gboolean put_file(const char *path, const void *data, gssize len) {
  FILE *fp = fopen(path, "wb");
  if (!fp) return FALSE;
  size_t n = len < 0 ? strlen(data) : (size_t)len;
  gboolean ok = fwrite(data, 1, n, fp) == n;
  return fclose(fp) == 0 && ok;
}

/* Writes [u64 hlen][header][data] and returns the path. hlen_override >= 0 replaces the length. */
static char *write_file(const char *name, const char *header, gssize hlen_override, const void *data, size_t data_len) {
  char *path = g_build_filename(tmp_dir, name, NULL);
  size_t hl = strlen(header);
  uint64_t n = hlen_override >= 0 ? (uint64_t)hlen_override : hl;
  GByteArray *b = g_byte_array_new();
  uint8_t len8[8];
  for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(n >> (8 * i));
  g_byte_array_append(b, len8, 8);
  g_byte_array_append(b, (const guint8 *)header, (guint)hl);
  if (data_len) g_byte_array_append(b, data, (guint)data_len);
  g_assert_true(put_file(path, (const char *)b->data, b->len));
  g_byte_array_unref(b);
  return path;
}

static void expect_error(const char *path, JfLoadError code, const char *fragment) {
  GError *e = NULL;
  StFile *f = safetensors_open(path, &e);
  if (f) g_error("%s: opened, expected error code %d (%s)", path, code, fragment ? fragment : "");
  g_assert_nonnull(e);
  if (!g_error_matches(e, JF_LOAD_ERROR, code))
    g_error("%s: got code %d '%s', expected %d", path, e->code, e->message, code);
  g_assert_nonnull(strstr(e->message, path));
  if (fragment && !strstr(e->message, fragment)) g_error("message '%s' lacks '%s'", e->message, fragment);
  g_test_message("%s", e->message);
  g_error_free(e);
}

/* A header + data pair that is valid, for the truncation tests. */
#define GOOD_HEADER                                                                      \
  "{\"__metadata__\":{\"format\":\"pt\"},"                                               \
  "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"                      \
  "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[8,16]}}"

static void test_fixture_model(void) {
  char *path = test_data_path("tiny/janusflow/model.safetensors");
  GError *e = NULL;
  StFile *f = safetensors_open(path, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(safetensors_n_tensors(f), ==, 125);
  g_assert_cmpstr(safetensors_path(f), ==, path);
  for (guint i = 0; i < safetensors_n_tensors(f); i++) {
    const StTensor *t = safetensors_tensor(f, i);
    g_assert_true(t->dtype == ST_DTYPE_BF16);
    g_assert_true(safetensors_find(f, t->name) == t);
  }
  const StTensor *t = safetensors_require(f, "language_model.model.embed_tokens.weight", 2, (int64_t[]){640, 64}, &e);
  g_assert_no_error(e);
  g_assert_cmpint(t->ndim, ==, 2);
  g_assert_cmpuint(t->n_elements, ==, 640 * 64);
  g_assert_cmpuint(t->n_bytes, ==, 640 * 64 * 2);
  g_assert_cmpstr(safetensors_dtype_name(t->dtype), ==, "BF16");
  /* bf16 -> bf16 is a copy, bf16 -> f32 puts the bits in the high half */
  uint16_t *h = g_new(uint16_t, t->n_elements);
  float *x = g_new(float, t->n_elements);
  safetensors_to_bf16(t, h);
  safetensors_to_f32(t, x);
  g_assert_cmpmem(h, t->n_bytes, t->data, t->n_bytes);
  for (uint64_t i = 0; i < t->n_elements; i++) {
    uint32_t u;
    memcpy(&u, &x[i], 4);
    g_assert_cmphex(u, ==, (uint32_t)h[i] << 16);
    g_assert_true(isfinite(x[i]));
  }
  g_free(h);
  g_free(x);
  /* wildcard shape entries, wrong shapes, missing tensors */
  g_assert_nonnull(safetensors_require(f, "vision_gen_enc_model.in_conv.weight", 4, (int64_t[]){-1, 4, -1, -1}, &e));
  g_assert_no_error(e);
  g_assert_nonnull(safetensors_require(f, "vision_gen_enc_model.in_conv.weight", -1, NULL, &e));
  g_assert_null(safetensors_require(f, "vision_gen_enc_model.in_conv.weight", 4, (int64_t[]){32, 4, 3, 3}, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH);
  g_assert_nonnull(strstr(e->message, "[32, 4, 2, 2]"));
  g_assert_nonnull(strstr(e->message, "vision_gen_enc_model.in_conv.weight"));
  g_clear_error(&e);
  g_assert_null(safetensors_require(f, "beg_of_und_embed", 1, (int64_t[]){64}, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH);
  g_clear_error(&e);
  g_assert_null(safetensors_find(f, "nope"));
  g_assert_null(safetensors_require(f, "nope", -1, NULL, &e));
  g_assert_error(e, JF_LOAD_ERROR, JF_LOAD_ERROR_MISSING);
  g_assert_nonnull(strstr(e->message, path));
  g_assert_nonnull(strstr(e->message, "nope"));
  g_clear_error(&e);
  safetensors_close(f);
  g_free(path);
}

static void test_fixture_vae(void) {
  char *path = test_data_path("tiny/vae/diffusion_pytorch_model.safetensors");
  GError *e = NULL;
  StFile *f = safetensors_open(path, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(safetensors_n_tensors(f), ==, 180);
  const StTensor *t = safetensors_require(f, "decoder.conv_in.weight", 4, (int64_t[]){64, 4, 3, 3}, &e);
  g_assert_no_error(e);
  g_assert_true(t->dtype == ST_DTYPE_F32);
  float *x = g_new(float, t->n_elements);
  uint16_t *h = g_new(uint16_t, t->n_elements);
  safetensors_to_f32(t, x);
  safetensors_to_bf16(t, h);
  g_assert_cmpmem(x, t->n_bytes, t->data, t->n_bytes);
  for (uint64_t i = 0; i < t->n_elements; i++) {
    /* the fixture's weights are bf16-representable, so rounding is exact */
    uint32_t u;
    memcpy(&u, &x[i], 4);
    g_assert_cmphex(u, ==, (uint32_t)h[i] << 16);
  }
  g_free(x);
  g_free(h);
  safetensors_close(f);
  g_free(path);
}

/* F32/F16/I32 data deliberately placed at an odd file offset. */
static void test_conversions(void) {
  const uint32_t f32_bits[] = {
    0x3F800000u,  /* 1.0 */
    0x3F808000u,  /* tie between 0x3F80 and 0x3F81 -> even 0x3F80 */
    0x3F818000u,  /* tie -> even 0x3F82 */
    0x3F808001u,  /* above the tie -> 0x3F81 */
    0x7FC00000u,  /* quiet NaN */
    0x7F800001u,  /* signalling NaN must stay NaN */
    0xFF800000u,  /* -inf */
    0x7F7FFFFFu,  /* FLT_MAX rounds up to inf */
    0x80000000u,  /* -0 */
    0x00000001u,  /* smallest subnormal -> +0 */
  };
  const uint16_t f32_expect[] = {0x3F80, 0x3F80, 0x3F82, 0x3F81, 0x7FC0, 0, 0xFF80, 0x7F80, 0x8000, 0x0000};
  const uint16_t f16[] = {0x3C00, 0x0001, 0x7C00, 0xFC00, 0x8000, 0xC000, 0x3555, 0x03FF};
  const float f16_expect[] = {1.0f, 5.9604644775390625e-08f, INFINITY, -INFINITY, -0.0f, -2.0f, 0.333251953125f,
                              6.0975551605224609375e-05f};
  const int32_t i32[] = {-3, 0, 70000};
  GByteArray *d = g_byte_array_new();
  g_byte_array_append(d, (const guint8 *)f32_bits, sizeof f32_bits);
  g_byte_array_append(d, (const guint8 *)f16, sizeof f16);
  g_byte_array_append(d, (const guint8 *)i32, sizeof i32);
  /* header length chosen so that 8 + N is odd: every tensor is misaligned */
  GString *h = g_string_new(NULL);
  g_string_printf(h,
                  "{\"f\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[0,40]},"
                  "\"h\":{\"dtype\":\"F16\",\"shape\":[2,4],\"data_offsets\":[40,56]},"
                  "\"i\":{\"dtype\":\"I32\",\"shape\":[3],\"data_offsets\":[56,68]}}");
  if (h->len % 2 == 0) g_string_append_c(h, ' ');
  char *path = write_file("conv.safetensors", h->str, -1, d->data, d->len);
  GError *e = NULL;
  StFile *f = safetensors_open(path, &e);
  g_assert_no_error(e);
  const StTensor *t = safetensors_find(f, "f");
  g_assert_cmpuint((uintptr_t)t->data % 2, ==, 1);
  uint16_t out16[10];
  safetensors_to_bf16(t, out16);
  for (int i = 0; i < 10; i++) {
    if (i == 5) {
      g_assert_cmphex(out16[i] & 0x7F80, ==, 0x7F80);
      g_assert_cmphex(out16[i] & 0x007F, !=, 0);
    } else {
      g_assert_cmphex(out16[i], ==, f32_expect[i]);
    }
  }
  float outf[10];
  safetensors_to_f32(t, outf);
  g_assert_cmpmem(outf, 40, f32_bits, 40);

  t = safetensors_find(f, "h");
  safetensors_to_f32(t, outf);
  for (int i = 0; i < 8; i++) {
    if (isinf(f16_expect[i])) g_assert_true(outf[i] == f16_expect[i]);
    else g_assert_cmpfloat(outf[i], ==, f16_expect[i]);
  }
  g_assert_true(signbit(outf[4]));
  safetensors_to_bf16(t, out16);
  g_assert_cmphex(out16[0], ==, 0x3F80);
  g_assert_cmphex(out16[2], ==, 0x7F80);
  g_assert_cmphex(out16[5], ==, 0xC000);

  t = safetensors_find(f, "i");
  g_assert_true(t->dtype == ST_DTYPE_I32);
  safetensors_to_f32(t, outf);
  g_assert_cmpfloat(outf[0], ==, -3.0f);
  g_assert_cmpfloat(outf[2], ==, 70000.0f);
  safetensors_close(f);
  g_free(path);
  g_string_free(h, TRUE);
  g_byte_array_unref(d);
}

static void test_empty_and_zero_size(void) {
  char *p = write_file("empty-obj.safetensors", "{}", -1, NULL, 0);
  GError *e = NULL;
  StFile *f = safetensors_open(p, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(safetensors_n_tensors(f), ==, 0);
  safetensors_close(f);
  g_free(p);
  /* zero-element tensors may share an offset with others */
  p = write_file("zero.safetensors",
                 "{\"z\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[4,4]},"
                 "\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}, \"s\":{\"dtype\":\"U8\",\"shape\":[],"
                 "\"data_offsets\":[8,9],\"extra\":{\"x\":[1,2.5e3,null,true,\"s\"]}}}  ",
                 -1, "\0\0\0\0\0\0\0\0\7", 9);
  f = safetensors_open(p, &e);
  g_assert_no_error(e);
  g_assert_cmpuint(safetensors_n_tensors(f), ==, 3);
  g_assert_cmpuint(safetensors_find(f, "z")->n_elements, ==, 0);
  g_assert_cmpint(safetensors_find(f, "s")->ndim, ==, 0);
  g_assert_cmpuint(safetensors_find(f, "s")->n_elements, ==, 1);
  safetensors_close(f);
  g_free(p);
}

static void test_truncations(void) {
  const char *hdr = GOOD_HEADER;
  uint8_t data[16] = {0};
  char *full = write_file("good.safetensors", hdr, -1, data, sizeof data);
  GError *e = NULL;
  StFile *f = safetensors_open(full, &e);
  g_assert_no_error(e);
  safetensors_close(f);
  char *bytes;
  gsize len;
  g_assert_true(g_file_get_contents(full, &bytes, &len, NULL));
  const size_t hl = strlen(hdr);
  const size_t cuts[] = {0, 3, 7, 8, 9, 8 + hl / 2, 8 + hl - 1, 8 + hl, 8 + hl + 4, 8 + hl + 15};
  for (size_t i = 0; i < G_N_ELEMENTS(cuts); i++) {
    char *name = g_strdup_printf("cut-%zu.safetensors", cuts[i]);
    char *p = g_build_filename(tmp_dir, name, NULL);
    g_assert_true(put_file(p, bytes, (gssize)cuts[i]));
    expect_error(p, JF_LOAD_ERROR_FORMAT, NULL);
    g_free(p);
    g_free(name);
  }
  g_free(bytes);
  g_free(full);
}

static void test_header_length(void) {
  uint8_t data[16] = {0};
  char *p = write_file("hlen-past.safetensors", GOOD_HEADER, (gssize)strlen(GOOD_HEADER) + 17, data, 16);
  expect_error(p, JF_LOAD_ERROR_FORMAT, "past the end");
  g_free(p);
  p = write_file("hlen-huge.safetensors", GOOD_HEADER, (gssize)1 << 62, data, 16);
  expect_error(p, JF_LOAD_ERROR_FORMAT, "100 MiB");
  g_free(p);
  /* A header length inside a (sparse) 200 MiB file but over the 100 MiB bound. */
  p = write_file("hlen-limit.safetensors", "{", 150 << 20, NULL, 0);
  g_assert_cmpint(truncate(p, 200 << 20), ==, 0);
  expect_error(p, JF_LOAD_ERROR_LIMIT, "100 MiB");
  g_unlink(p);
  g_free(p);
}

typedef struct {
  const char *name, *header;
  JfLoadError code;
  const char *fragment;
} BadCase;

static void test_bad_headers(void) {
  static const BadCase cases[] = {
    {"not-json", "hello world", JF_LOAD_ERROR_FORMAT, "not a JSON object"},
    {"json-array", "[1, 2, 3]", JF_LOAD_ERROR_FORMAT, "not a JSON object"},
    {"json-string", "\"x\"", JF_LOAD_ERROR_FORMAT, NULL},
    {"unterminated", "{\"a\":{\"dtype\":\"F32\"", JF_LOAD_ERROR_FORMAT, NULL},
    {"trailing", "{}x", JF_LOAD_ERROR_FORMAT, "after the JSON"},
    {"bad-utf8", "{\"\xff\xfe\":1}", JF_LOAD_ERROR_FORMAT, "UTF-8"},
    {"nul-in-header", "{\"a\0\":1}", JF_LOAD_ERROR_FORMAT, NULL},
    {"entry-not-object", "{\"a\":[1]}", JF_LOAD_ERROR_FORMAT, "'a'"},
    {"offsets-out-of-range", "{\"a\":{\"dtype\":\"F32\",\"shape\":[250],\"data_offsets\":[0,1000]}}",
     JF_LOAD_ERROR_FORMAT, "past the end"},
    {"offsets-reversed", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", JF_LOAD_ERROR_FORMAT,
     "reversed"},
    {"overlap",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
     JF_LOAD_ERROR_FORMAT, "overlap"},
    {"overlap-same",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
     "\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     JF_LOAD_ERROR_FORMAT, "overlap"},
    {"count-overflow", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}",
     JF_LOAD_ERROR_FORMAT, "overflow"},
    {"bytes-overflow", "{\"a\":{\"dtype\":\"I64\",\"shape\":[4611686018427387904],\"data_offsets\":[0,8]}}",
     JF_LOAD_ERROR_FORMAT, "overflow"},
    {"dim-too-large", "{\"a\":{\"dtype\":\"U8\",\"shape\":[99999999999999999999],\"data_offsets\":[0,8]}}",
     JF_LOAD_ERROR_FORMAT, "too large"},
    {"unknown-dtype", "{\"a\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}", JF_LOAD_ERROR_FORMAT,
     "dtype"},
    {"garbage-dtype", "{\"a\":{\"dtype\":\"\\u00e9\\n\",\"shape\":[1],\"data_offsets\":[0,8]}}", JF_LOAD_ERROR_FORMAT,
     "dtype"},
    {"dtype-not-string", "{\"a\":{\"dtype\":5,\"shape\":[1],\"data_offsets\":[0,8]}}", JF_LOAD_ERROR_FORMAT, "dtype"},
    {"shape-mismatch", "{\"a\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", JF_LOAD_ERROR_FORMAT,
     "need 12 bytes"},
    {"duplicate", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                  "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     JF_LOAD_ERROR_FORMAT, "twice"},
    {"duplicate-escaped", "{\"ab\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
                          "\"a\\u0062\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
     JF_LOAD_ERROR_FORMAT, "twice"},
    {"duplicate-field", "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
     JF_LOAD_ERROR_FORMAT, "twice"},
    {"missing-dtype", "{\"a\":{\"shape\":[1],\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT, "'dtype' missing"},
    {"missing-shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT, "'shape' missing"},
    {"missing-offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", JF_LOAD_ERROR_FORMAT, "'data_offsets' missing"},
    {"shape-not-array", "{\"a\":{\"dtype\":\"F32\",\"shape\":\"1\",\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT,
     "shape"},
    {"shape-float", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT,
     "integer"},
    {"negative-dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT,
     "negative"},
    {"too-many-dims", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}",
     JF_LOAD_ERROR_FORMAT, "dimensions"},
    {"offsets-three", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", JF_LOAD_ERROR_FORMAT,
     "data_offsets"},
    {"offsets-negative", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", JF_LOAD_ERROR_FORMAT,
     "data_offsets"},
    {"metadata-not-string", "{\"__metadata__\":{\"k\":1}}", JF_LOAD_ERROR_FORMAT, "__metadata__"},
    {"metadata-not-object", "{\"__metadata__\":[]}", JF_LOAD_ERROR_FORMAT, "__metadata__"},
    {"metadata-twice", "{\"__metadata__\":{},\"__metadata__\":{}}", JF_LOAD_ERROR_FORMAT, "__metadata__"},
    {"lone-surrogate", "{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT,
     "surrogate"},
    {"nul-escape", "{\"a\\u0000b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", JF_LOAD_ERROR_FORMAT,
     "NUL"},
    {"bad-escape", "{\"a\\q\":1}", JF_LOAD_ERROR_FORMAT, "escape"},
    {"control-char", "{\"a\tb\":1}", JF_LOAD_ERROR_FORMAT, "control"},
  };
  uint8_t data[16] = {0};
  for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
    char *name = g_strdup_printf("%s.safetensors", cases[i].name);
    /* the "nul-in-header" case carries an explicit length to keep its NUL byte */
    gssize hl = strcmp(cases[i].name, "nul-in-header") == 0 ? 8 : -1;
    char *p;
    if (hl > 0) {
      p = g_build_filename(tmp_dir, name, NULL);
      uint8_t raw[8 + 8 + 16] = {8};
      memcpy(raw + 8, "{\"a\0\":1}", 8);
      g_assert_true(put_file(p, (const char *)raw, sizeof raw));
    } else {
      p = write_file(name, cases[i].header, -1, data, sizeof data);
    }
    expect_error(p, cases[i].code, cases[i].fragment);
    g_free(p);
    g_free(name);
  }
}

static void test_deep_nesting(void) {
  /* deep nesting inside an unknown field, and at the top level */
  GString *h = g_string_new("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":");
  for (int i = 0; i < 100000; i++) g_string_append_c(h, '[');
  for (int i = 0; i < 100000; i++) g_string_append_c(h, ']');
  g_string_append(h, "}}");
  uint8_t data[4] = {0};
  char *p = write_file("deep.safetensors", h->str, -1, data, 4);
  expect_error(p, JF_LOAD_ERROR_FORMAT, "deep");
  g_free(p);
  g_string_truncate(h, 0);
  for (int i = 0; i < 100000; i++) g_string_append_c(h, '{');
  p = write_file("deep-top.safetensors", h->str, -1, data, 4);
  expect_error(p, JF_LOAD_ERROR_FORMAT, NULL);
  g_free(p);
  g_string_free(h, TRUE);
}

static void test_not_a_file(void) {
  char *p = g_build_filename(tmp_dir, "does-not-exist.safetensors", NULL);
  expect_error(p, JF_LOAD_ERROR_MISSING, NULL);
  g_free(p);
  expect_error(tmp_dir, JF_LOAD_ERROR_IO, NULL);
}

/* Random byte flips and cuts of a valid file: every outcome is a clean open or a clean error. */
static void test_fuzz(void) {
  uint8_t data[16];
  for (int i = 0; i < 16; i++) data[i] = (uint8_t)(i * 37);
  char *good = write_file("fuzz-src.safetensors", GOOD_HEADER, -1, data, 16);
  char *bytes;
  gsize len;
  g_assert_true(g_file_get_contents(good, &bytes, &len, NULL));
  char *p = g_build_filename(tmp_dir, "fuzz.safetensors", NULL);
  char *mut = g_malloc(len);
  int opened = 0, failed = 0;
  for (int it = 0; it < 2000; it++) {
    memcpy(mut, bytes, len);
    int flips = g_test_rand_int_range(1, 4);
    for (int k = 0; k < flips; k++) {
      gsize at = (gsize)g_test_rand_int_range(0, (gint32)len);
      const char pool[] = "{}[]\",:0123456789-.eE \\u\xff";
      mut[at] = g_test_rand_bit() ? (char)g_test_rand_int_range(0, 256) : pool[g_test_rand_int_range(0, sizeof pool - 1)];
    }
    gsize n = g_test_rand_int_range(0, 8) == 0 ? (gsize)g_test_rand_int_range(0, (gint32)len) : len;
    g_assert_true(put_file(p, mut, (gssize)n));
    GError *e = NULL;
    StFile *f = safetensors_open(p, &e);
    if (f) {
      opened++;
      for (guint i = 0; i < safetensors_n_tensors(f); i++) {
        const StTensor *t = safetensors_tensor(f, i);
        float *x = g_new(float, t->n_elements + 1);
        safetensors_to_f32(t, x);
        g_free(x);
      }
      safetensors_close(f);
    } else {
      failed++;
      g_assert_true(e && e->domain == JF_LOAD_ERROR && strstr(e->message, p));
      g_error_free(e);
    }
  }
  g_test_message("fuzz: %d opened, %d rejected", opened, failed);
  g_assert_cmpint(failed, >, 0);
  g_free(mut);
  g_free(p);
  g_free(bytes);
  g_free(good);
}

int main(int argc, char **argv) {
  g_test_init(&argc, &argv, NULL);
  tmp_dir = test_tmp_dir_new("jf-test-st-XXXXXX");
  g_test_add_func("/safetensors/fixture-model", test_fixture_model);
  g_test_add_func("/safetensors/fixture-vae", test_fixture_vae);
  g_test_add_func("/safetensors/conversions", test_conversions);
  g_test_add_func("/safetensors/empty-and-zero-size", test_empty_and_zero_size);
  g_test_add_func("/safetensors/truncations", test_truncations);
  g_test_add_func("/safetensors/header-length", test_header_length);
  g_test_add_func("/safetensors/bad-headers", test_bad_headers);
  g_test_add_func("/safetensors/deep-nesting", test_deep_nesting);
  g_test_add_func("/safetensors/not-a-file", test_not_a_file);
  g_test_add_func("/safetensors/fuzz", test_fuzz);
  int rc = g_test_run();
  test_rm_rf(tmp_dir);
  g_free(tmp_dir);
  return rc;
}
