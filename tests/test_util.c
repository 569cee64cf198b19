#include "test_util.h"

#include <glib/gstdio.h>

char *test_data_path(const char *rel)
{
  const char *root = g_getenv("JF_TEST_DATA");
  return g_build_filename(root ? root : "tests/data", rel, NULL);
}

char *test_tmp_dir_new(const char *tmpl)
{
  GError *e = NULL;
  char *dir = g_dir_make_tmp(tmpl, &e);
  test_check_no_error(e);
  g_assert_nonnull(dir);
  return dir;
}

void test_rm_rf(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *d = g_dir_open(path, 0, NULL);
    const char *n;
    while (d && (n = g_dir_read_name(d))) {
      char *p = g_build_filename(path, n, NULL);
      test_rm_rf(p);
      g_free(p);
    }
    if (d)
      g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

void test_check_no_error(GError *e)
{
  if (e)
    g_printerr("error: %s\n", e->message);
  g_assert_no_error(e);
}

float *test_rand_f32(GRand *rng, size_t n, double lo, double hi)
{
  float *v = g_new(float, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    v[i] = (float)g_rand_double_range(rng, lo, hi);
  return v;
}

uint16_t *test_rand_bf16(GRand *rng, size_t n, double lo, double hi)
{
  uint16_t *v = g_new(uint16_t, n ? n : 1);
  for (size_t i = 0; i < n; i++)
    v[i] = bf16_from_f32((float)g_rand_double_range(rng, lo, hi));
  return v;
}

#if __has_include("npy.h")
NpyArray *test_npy_read_f32(const char *dir, const char *name)
{
  GError *err = NULL;
  char *path = g_build_filename(dir, name, NULL);
  NpyArray *a = npy_read(path, &err);
  g_assert_no_error(err);
  g_assert_nonnull(a);
  g_assert_cmpint(a->dtype, ==, NPY_F32);
  g_free(path);
  return a;
}

float *test_npy_load_floats(const char *dir, const char *rel, size_t n_expected)
{
  NpyArray *a = test_npy_read_f32(dir, rel);
  g_assert_cmpuint(a->n_elements, ==, n_expected);
  float *d = g_memdup2(a->data, n_expected * 4);
  npy_array_free(a);
  return d;
}
#endif

#if __has_include("vkrt.h")
VkrtContext *test_context_new(bool validate)
{
  GError *e = NULL;
  VkrtOptions opt = { .validate = validate };
  VkrtContext *ctx = vkrt_context_new(&opt, &e);
  if (!ctx) {
    g_printerr("no Vulkan context: %s\n", e ? e->message : "(no reason given)");
    g_clear_error(&e);
  }
  return ctx;
}

VkrtContext *test_context_new_max_binding(const char *max_binding)
{
  GError *e = NULL;
  g_setenv("JANUSFLOW_MAX_BINDING", max_binding, TRUE);
  VkrtContext *ctx = vkrt_context_new(&(VkrtOptions){ 0 }, &e);
  g_unsetenv("JANUSFLOW_MAX_BINDING");
  test_check_no_error(e);
  g_assert_nonnull(ctx);
  return ctx;
}

VkrtBuffer *test_upload_span(VkrtContext *ctx, const void *data, size_t bytes, uint64_t off, uint64_t tail)
{
  GError *e = NULL;
  uint64_t size = off + bytes + tail;
  VkrtBuffer *b = vkrt_buffer_new(ctx, size, &e);
  test_check_no_error(e);
  g_assert_nonnull(b);
  /* fill works on whole words: a last 1-3 bytes past the data stay as they were */
  g_assert_true(vkrt_buffer_fill(b, 0, size / 4 * 4, 0x7fc00000u, &e));
  test_check_no_error(e);
  if (data) {
    g_assert_true(vkrt_buffer_write(b, off, data, bytes, &e));
    test_check_no_error(e);
  }
  return b;
}

VkrtBuffer *test_upload_at(VkrtContext *ctx, const void *data, size_t bytes, uint64_t off)
{
  return test_upload_span(ctx, data, bytes, off, 64);
}

void test_download(VkrtBuffer *b, uint64_t off, void *data, size_t bytes)
{
  GError *e = NULL;
  g_assert_true(vkrt_buffer_read(b, off, data, bytes, &e));
  test_check_no_error(e);
}

VkrtSeq *test_seq_begin(VkrtContext *ctx)
{
  GError *e = NULL;
  VkrtSeq *seq = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  g_assert_nonnull(seq);
  vkrt_seq_begin(seq);
  return seq;
}

void test_seq_run(VkrtSeq *seq)
{
  GError *e = NULL;
  gboolean ok = vkrt_seq_submit(seq, &e);
  test_check_no_error(e);
  g_assert_true(ok);
}

void test_seq_run_free(VkrtSeq *seq)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  test_seq_run(seq);
  vkrt_seq_free(seq);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}
#endif

#if __has_include(<json-glib/json-glib.h>)
char **test_fixture_case_argv(const char *fixture, const char *case_name, const char *exe, const char *dump,
                              const char *out, guint n_extra, JsonObject **case_out, JsonParser **parser_out)
{
  char *mpath = g_build_filename(fixture, "expected", "manifest.json", NULL);
  JsonParser *parser = json_parser_new();
  GError *err = NULL;
  json_parser_load_from_file(parser, mpath, &err);
  test_check_no_error(err);
  g_free(mpath);
  JsonArray *cases = json_object_get_array_member(json_node_get_object(json_parser_get_root(parser)), "cases");
  JsonObject *cs = NULL;
  for (guint i = 0; i < json_array_get_length(cases); i++) {
    JsonObject *o = json_array_get_object_element(cases, i);
    if (g_strcmp0(json_object_get_string_member(o, "name"), case_name) == 0)
      cs = o;
  }
  g_assert_nonnull(cs);
  JsonArray *argv_j = json_object_get_array_member(cs, "argv");
  guint argc = json_array_get_length(argv_j);
  char **argv = g_new0(char *, argc + n_extra + 2);
  argv[0] = g_strdup(exe);
  for (guint i = 0; i < argc; i++) {
    GString *g = g_string_new(json_array_get_string_element(argv_j, i));
    g_string_replace(g, "{FIXTURE}", fixture, 0);
    g_string_replace(g, "{DUMP}", dump, 0);
    g_string_replace(g, "{OUT}", out, 0);
    argv[i + 1] = g_string_free(g, FALSE);
  }
  *case_out = cs;
  *parser_out = parser;
  return argv;
}
#endif
