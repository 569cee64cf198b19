/* The Vulkan runtime (vk/vkrt.h): device listing and selection, buffers, binding limits and
 * windows, timestamps, replay, FLOP counting, fault injection and the validation hook. Every
 * context used by a test ends with no validation message (except the one that provokes one). */
#include <glib.h>
#include <glib/gstdio.h>
#include <math.h>
#include <string.h>

#include "ops.h"
#include "vkrt_internal.h"
#include "test_util.h"

static VkrtContext *context_new(const char *device)
{
  GError *e = NULL;
  VkrtOptions opt = { .device = device };
  VkrtContext *ctx = vkrt_context_new(&opt, &e);
  test_check_no_error(e);
  g_assert_nonnull(ctx);
  return ctx;
}

static void context_free_clean(VkrtContext *ctx)
{
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
}

static void test_devices(void)
{
  GError *e = NULL;
  GArray *devs = vkrt_list_devices(&e);
  test_check_no_error(e);
  g_assert_cmpuint(devs->len, >=, 1);
  for (guint i = 0; i < devs->len; i++) {
    const VkrtDeviceInfo *d = &g_array_index(devs, VkrtDeviceInfo, i);
    g_assert_cmpuint(strlen(d->name), >, 0);
    g_assert_cmpuint(d->max_storage_range, >, 0);
    g_assert_cmpuint(d->max_alloc, >, 0);
    g_test_message("device %u: %s (%s) driver %s", d->index, d->name, vkrt_device_type_name(d->type), d->driver);
  }
  char *why = NULL;
  int best = vkrt_select_device(devs, NULL, &why, &e);
  test_check_no_error(e);
  g_assert_cmpint(best, >=, 0);
  g_assert_nonnull(why);
  g_free(why);
  /* by index and by a case-changed name substring */
  const VkrtDeviceInfo *d0 = &g_array_index(devs, VkrtDeviceInfo, best);
  char *idx = g_strdup_printf("%u", d0->index);
  g_assert_cmpint(vkrt_select_device(devs, idx, NULL, &e), ==, best);
  test_check_no_error(e);
  char *sub = g_ascii_strup(d0->name, MIN(strlen(d0->name), 5));
  g_assert_cmpint(vkrt_select_device(devs, sub, NULL, &e), >=, 0);
  test_check_no_error(e);
  /* unknown selectors name the devices */
  g_assert_cmpint(vkrt_select_device(devs, "no-such-gpu", NULL, &e), ==, -1);
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_NO_DEVICE);
  g_assert_nonnull(strstr(e->message, d0->name));
  g_clear_error(&e);
  g_assert_cmpint(vkrt_select_device(devs, "99", NULL, &e), ==, -1);
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_NO_DEVICE);
  g_clear_error(&e);
  g_assert_null(vkrt_context_new(&(VkrtOptions){ .device = "no-such-gpu" }, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_NO_DEVICE);
  g_clear_error(&e);

  VkrtContext *ctx = context_new(sub);
  g_assert_cmpstr(vkrt_context_info(ctx)->name, ==, d0->name);
  context_free_clean(ctx);
  g_free(sub);
  g_free(idx);
  g_array_free(devs, TRUE);
}

static void test_buffers(void)
{
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  uint64_t before = vkrt_context_allocated(ctx);
  VkrtBuffer *b = vkrt_buffer_new(ctx, 1001, &e);
  test_check_no_error(e);
  g_assert_cmpuint(vkrt_buffer_size(b), ==, 1001);
  g_assert_cmpuint(vkrt_context_allocated(ctx), >=, before + 1001);
  uint8_t data[1001], back[1001];
  for (int i = 0; i < 1001; i++) data[i] = (uint8_t)(i * 7);
  g_assert_true(vkrt_buffer_write(b, 0, data, 1001, &e));
  g_assert_true(vkrt_buffer_fill(b, 100, 40, 0xdeadbeefu, &e));
  g_assert_true(vkrt_buffer_read(b, 0, back, 1001, &e));
  test_check_no_error(e);
  for (int i = 0; i < 1001; i++) {
    if (i >= 100 && i < 140) {
      static const uint8_t pat[4] = { 0xef, 0xbe, 0xad, 0xde };
      g_assert_cmpuint(back[i], ==, pat[i % 4]);
    } else {
      g_assert_cmpuint(back[i], ==, data[i]);
    }
  }
  /* partial read at an odd offset */
  g_assert_true(vkrt_buffer_read(b, 997, back, 4, &e));
  g_assert_cmpmem(back, 4, data + 997, 4);
  /* out of range and misaligned fills are errors, not crashes */
  g_assert_false(vkrt_buffer_write(b, 1000, data, 2, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_FAILED);
  g_clear_error(&e);
  g_assert_false(vkrt_buffer_read(b, 2000, back, 1, &e));
  g_clear_error(&e);
  g_assert_false(vkrt_buffer_fill(b, 2, 4, 0, &e));
  g_clear_error(&e);
  /* bigger than one allocation may be: refused with a message, callers split */
  uint64_t huge = vkrt_context_info(ctx)->max_alloc + 4096;
  g_assert_null(vkrt_buffer_new(ctx, huge, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED);
  g_clear_error(&e);

  /* copies and fills recorded in a sequence */
  VkrtBuffer *c = vkrt_buffer_new(ctx, 1001, &e);
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  vkrt_seq_begin(s);
  vkrt_seq_fill(s, vkrt_tensor_sub(vkrt_tensor(c), 0, 1000), 0x01010101u);
  vkrt_seq_copy(s, vkrt_tensor_sub(vkrt_tensor(c), 3, 10), vkrt_tensor_sub(vkrt_tensor(b), 500, 20), 100);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_assert_true(vkrt_buffer_read(c, 0, back, 16, &e));
  g_assert_cmpuint(back[0], ==, 1);
  g_assert_cmpmem(back + 3, 10, data + 500, 10);
  g_assert_cmpuint(back[13], ==, 1);
  vkrt_seq_free(s);
  vkrt_buffer_free(c);
  vkrt_buffer_free(b);
  g_assert_cmpuint(vkrt_context_allocated(ctx), ==, before);
  context_free_clean(ctx);
}

/* JANUSFLOW_MAX_BINDING lowers the binding limit: a dispatch over a larger binding is refused,
 * and ops window their operands (the embed table here) to stay under it. */
static void test_windows(void)
{
  g_setenv("JANUSFLOW_MAX_BINDING", "4096", TRUE);
  VkrtContext *ctx = context_new(NULL);
  g_unsetenv("JANUSFLOW_MAX_BINDING");
  GError *e = NULL;
  g_assert_cmpuint(vkrt_max_binding(ctx, false), ==, 4096);
  g_assert_cmpuint(vkrt_max_binding(ctx, true), ==, 4096);
  g_assert_cmpuint(vkrt_context_info(ctx)->max_storage_range, ==, 4096);

  /* a 100 x 30 bf16 table (6000 bytes) in windows, looked up with 6 ids */
  uint32_t vocab = 100, dim = 30, n = 6;
  uint16_t table[3000];
  for (int i = 0; i < 3000; i++) table[i] = (uint16_t)(0x3f80 + (i % 128));  /* 1.0 .. ~2 */
  int32_t ids[6] = { 0, 99, 50, 68, 69, 3 };
  VkrtBuffer *bt = vkrt_buffer_new(ctx, sizeof table, &e), *bi = vkrt_buffer_new(ctx, sizeof ids, &e);
  VkrtBuffer *by = vkrt_buffer_new(ctx, 4ull * n * dim, &e);
  test_check_no_error(e);
  vkrt_buffer_write(bt, 0, table, sizeof table, &e);
  vkrt_buffer_write(bi, 0, ids, sizeof ids, &e);
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  vkrt_op_embed(s, vkrt_tensor(by), vkrt_tensor(bt), vkrt_tensor(bi), n, dim, vocab);
  g_assert_cmpuint(vkrt_seq_dispatch_count(s), >=, 2);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  float y[180];
  vkrt_buffer_read(by, 0, y, sizeof y, &e);
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t c = 0; c < dim; c++) {
      uint32_t bits = (uint32_t)table[ids[i] * dim + c] << 16;
      float want;
      memcpy(&want, &bits, 4);
      g_assert_cmpfloat(y[i * dim + c], ==, want);
    }
  /* a raw dispatch binding more than the limit is an error at submit */
  VkrtBuffer *big = vkrt_buffer_new(ctx, 8192, &e);
  vkrt_seq_begin(s);
  uint32_t push[4] = { 16, 0, 0, 0 };
  VkrtDispatch d = { .shader = "eltwise_add", .n_bindings = 3,
                     .bindings = { vkrt_tensor(big), vkrt_tensor(big), vkrt_tensor(big) },
                     .push = push, .push_size = sizeof push, .groups = { 1, 1, 1 } };
  vkrt_seq_dispatch(s, &d);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_FAILED);
  g_clear_error(&e);
  /* a misaligned binding too */
  vkrt_seq_begin(s);
  d.bindings[0] = vkrt_tensor_sub(vkrt_tensor(big), 4, 64);
  vkrt_seq_dispatch(s, &d);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_clear_error(&e);
  /* an unknown shader */
  vkrt_seq_begin(s);
  d.shader = "no_such_shader";
  d.bindings[0] = vkrt_tensor_sub(vkrt_tensor(big), 0, 64);
  vkrt_seq_dispatch(s, &d);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_nonnull(strstr(e->message, "no_such_shader"));
  g_clear_error(&e);
  vkrt_seq_free(s);
  vkrt_buffer_free(big);
  vkrt_buffer_free(bt);
  vkrt_buffer_free(bi);
  vkrt_buffer_free(by);
  context_free_clean(ctx);
}

/* y += x . w^T recorded once, replayed: y grows by the same amount every time; FLOPs count
 * every execution; timestamps come back for every mark on submit and replay. */
static void test_replay_timestamps(void)
{
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  enum { M = 2, N = 8, K = 16 };
  float x[M * K];
  uint16_t w[N * K];
  for (int i = 0; i < M * K; i++) x[i] = 1.0f;
  for (int i = 0; i < N * K; i++) w[i] = 0x3f80; /* 1.0 */
  VkrtBuffer *bx = vkrt_buffer_new(ctx, sizeof x, &e), *bw = vkrt_buffer_new(ctx, sizeof w, &e);
  VkrtBuffer *by = vkrt_buffer_new(ctx, 4 * M * N, &e);
  test_check_no_error(e);
  vkrt_buffer_write(bx, 0, x, sizeof x, &e);
  vkrt_buffer_write(bw, 0, w, sizeof w, &e);
  vkrt_buffer_fill(by, 0, 4 * M * N, 0, &e);
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  vkrt_context_reset_flops(ctx);
  vkrt_seq_begin(s);
  vkrt_seq_mark(s, "start");
  vkrt_op_matmul(s, vkrt_tensor(by), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor_none(), M, N, K, VKRT_MM_ACCUMULATE);
  vkrt_seq_mark(s, "matmul");
  vkrt_op_add(s, vkrt_tensor(by), vkrt_tensor(by), vkrt_tensor(by), M * N);  /* y *= 2 */
  vkrt_seq_mark(s, "add");
  g_assert_cmpuint(vkrt_seq_dispatch_count(s), ==, 2);
  /* work counts when it is submitted, not when it is recorded */
  g_assert_cmpuint(vkrt_context_flops(ctx), ==, 0);
  g_assert_true(vkrt_seq_submit(s, &e));
  g_assert_cmpuint(vkrt_context_flops(ctx), ==, 2ull * M * N * K);
  test_check_no_error(e);
  float y[M * N];
  vkrt_buffer_read(by, 0, y, sizeof y, &e);
  g_assert_cmpfloat(y[0], ==, 32.0f);  /* (0 + 16) * 2 */
  uint32_t nt = 0;
  const VkrtTiming *t = vkrt_seq_timings(s, &nt);
  if (vkrt_context_info(ctx)->has_timestamps) {
    g_assert_cmpuint(nt, ==, 3);
    g_assert_cmpstr(t[0].label, ==, "start");
    g_assert_cmpstr(t[2].label, ==, "add");
    double sum = 0;
    for (uint32_t i = 0; i < nt; i++) {
      g_assert_cmpfloat(t[i].ms, >=, 0.0);
      sum += t[i].ms;
    }
    g_assert_cmpfloat(vkrt_seq_gpu_ms(s), ==, sum);
  }
  g_assert_true(vkrt_seq_replay(s, &e));
  g_assert_true(vkrt_seq_replay(s, &e));
  test_check_no_error(e);
  vkrt_buffer_read(by, 0, y, sizeof y, &e);
  g_assert_cmpfloat(y[M * N - 1], ==, 224.0f);  /* ((32 + 16) * 2 + 16) * 2 */
  g_assert_cmpuint(vkrt_context_flops(ctx), ==, 3 * 2ull * M * N * K);
  vkrt_seq_timings(s, &nt);
  if (vkrt_context_info(ctx)->has_timestamps) g_assert_cmpuint(nt, ==, 3);
  /* a fresh recording forgets the old one */
  vkrt_seq_begin(s);
  g_assert_cmpuint(vkrt_seq_dispatch_count(s), ==, 0);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  vkrt_seq_free(s);
  vkrt_buffer_free(bx);
  vkrt_buffer_free(bw);
  vkrt_buffer_free(by);
  context_free_clean(ctx);
}

static void test_fault_injection(void)
{
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  /* the 2nd allocation from now fails with OOM; the context stays usable */
  vkrt_context_fail_alloc_after(ctx, 2);
  VkrtBuffer *a = vkrt_buffer_new(ctx, 64, &e);
  test_check_no_error(e);
  g_assert_null(vkrt_buffer_new(ctx, 64, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_OOM);
  g_clear_error(&e);
  VkrtBuffer *b = vkrt_buffer_new(ctx, 64, &e);
  test_check_no_error(e);
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  vkrt_op_add(s, vkrt_tensor(a), vkrt_tensor(b), vkrt_tensor(b), 16);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  /* the next submit reports a lost device, and so does every later one: re-create */
  vkrt_context_fail_submit_after(ctx, 1);
  vkrt_seq_begin(s);
  vkrt_op_add(s, vkrt_tensor(a), vkrt_tensor(b), vkrt_tensor(b), 16);
  g_assert_false(vkrt_seq_submit(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST);
  g_clear_error(&e);
  g_assert_false(vkrt_seq_replay(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST);
  g_clear_error(&e);
  vkrt_seq_free(s);
  vkrt_buffer_free(a);
  vkrt_buffer_free(b);
  context_free_clean(ctx);

  /* the same through the environment, on a re-created context */
  g_setenv("JANUSFLOW_FAIL_ALLOC", "1", TRUE);
  g_setenv("JANUSFLOW_FAIL_SUBMIT", "2", TRUE);
  ctx = context_new(NULL);
  g_unsetenv("JANUSFLOW_FAIL_ALLOC");
  g_unsetenv("JANUSFLOW_FAIL_SUBMIT");
  g_assert_null(vkrt_buffer_new(ctx, 64, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_OOM);
  g_clear_error(&e);
  a = vkrt_buffer_new(ctx, 64, &e);
  test_check_no_error(e);
  s = vkrt_seq_new(ctx, &e);
  vkrt_op_add(s, vkrt_tensor(a), vkrt_tensor(a), vkrt_tensor(a), 16);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_assert_false(vkrt_seq_replay(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST);
  g_clear_error(&e);
  vkrt_seq_free(s);
  vkrt_buffer_free(a);
  context_free_clean(ctx);
}

/* A validation message (provoked with a misaligned texel view) fails the next submit. */
static void test_validation_hook(void)
{
  if (!g_getenv("JANUSFLOW_VALIDATE")) {
    g_test_skip("JANUSFLOW_VALIDATE is not set");
    return;
  }
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  VkrtBuffer *b = vkrt_buffer_new(ctx, 1024, &e);
  test_check_no_error(e);
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  vkrt_op_add(s, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), 16);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_printerr("# the next validation message is expected\n");
  VkBufferViewCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_BUFFER_VIEW_CREATE_INFO,
    .buffer = b->buffer,
    .format = VK_FORMAT_R32G32B32A32_UINT,
    .offset = 0,
    .range = 20,  /* not a multiple of the texel size */
  };
  VkBufferView view = VK_NULL_HANDLE;
  if (vkCreateBufferView(ctx->device, &ci, NULL, &view) == VK_SUCCESS) vkDestroyBufferView(ctx->device, view, NULL);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), >, 0);
  g_assert_false(vkrt_seq_replay(s, &e));
  g_assert_error(e, VKRT_ERROR, VKRT_ERROR_VALIDATION);
  g_clear_error(&e);
  /* reported once: the following submit succeeds */
  g_assert_true(vkrt_seq_replay(s, &e));
  test_check_no_error(e);
  vkrt_seq_free(s);
  vkrt_buffer_free(b);
  vkrt_context_free(ctx);
}

/* --- pipeline cache and record-only mode (latency) -------------------------------------------- */

static VkrtContext *context_cached(const char *dir)
{
  GError *e = NULL;
  VkrtContext *ctx = vkrt_context_new(&(VkrtOptions){ .pipeline_cache_dir = dir }, &e);
  test_check_no_error(e);
  g_assert_nonnull(ctx);
  return ctx;
}

/* y = (x . w^T) + x[:, :N] over a few pipelines (matmul, add); y comes back in out[M * N]. */
enum { PC_M = 3, PC_N = 8, PC_K = 16 };
static void run_small(VkrtContext *ctx, float out[PC_M * PC_N])
{
  GError *e = NULL;
  float x[PC_M * PC_K];
  uint16_t w[PC_N * PC_K];
  for (int i = 0; i < PC_M * PC_K; i++) x[i] = (float)(i % 7) - 3.0f;
  for (int i = 0; i < PC_N * PC_K; i++) w[i] = (uint16_t)(0x3f80 + (i % 5) * 0x20); /* 1.0 .. 1.5 */
  VkrtBuffer *bx = vkrt_buffer_new(ctx, sizeof x, &e), *bw = vkrt_buffer_new(ctx, sizeof w, &e);
  VkrtBuffer *by = vkrt_buffer_new(ctx, 4 * PC_M * PC_N, &e);
  test_check_no_error(e);
  g_assert_true(vkrt_buffer_write(bx, 0, x, sizeof x, &e));
  g_assert_true(vkrt_buffer_write(bw, 0, w, sizeof w, &e));
  g_assert_true(vkrt_buffer_fill(by, 0, 4 * PC_M * PC_N, 0x7fc00000u, &e));  /* NaN: "not computed" */
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  vkrt_op_matmul(s, vkrt_tensor(by), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor_none(), PC_M, PC_N, PC_K, 0);
  vkrt_op_add(s, vkrt_tensor(by), vkrt_tensor(by), vkrt_tensor_sub(vkrt_tensor(bx), 0, 4 * PC_M * PC_N), PC_M * PC_N);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_assert_true(vkrt_buffer_read(by, 0, out, 4 * PC_M * PC_N, &e));
  test_check_no_error(e);
  vkrt_seq_free(s);
  vkrt_buffer_free(bx);
  vkrt_buffer_free(bw);
  vkrt_buffer_free(by);
}

static void write_file(const char *path, const void *data, gsize size)
{
  GError *e = NULL;
  g_assert_true(g_file_set_contents(path, data, (gssize)size, &e));
  g_assert_no_error(e);
}

/* The cache file: our wrapper (magic, payload size, SHA-256 of the payload), then the driver's data
 * with Vulkan's header. rewrap() makes the wrapper of file[0, size) whole again and returns size. */
#define PC_WRAP 48u
static gsize rewrap(char *file, gsize size)
{
  guint64 n = size - PC_WRAP;
  for (int i = 0; i < 8; i++) file[8 + i] = (char)(n >> (8 * i));
  GChecksum *c = g_checksum_new(G_CHECKSUM_SHA256);
  g_checksum_update(c, (const guchar *)file + PC_WRAP, (gssize)n);
  gsize len = 32;
  g_checksum_get_digest(c, (guint8 *)file + 16, &len);
  g_checksum_free(c);
  return size;
}

/* A context given `contents` as its cache file ignores it (0 bytes loaded) and still works; its
 * results equal `want`. The file is rewritten with good data when the context goes. */
static void expect_ignored(const char *dir, const char *path, const void *contents, gsize size, const float *want,
                           const char *what)
{
  g_test_message("cache file: %s", what);
  if (contents) write_file(path, contents, size);
  VkrtContext *ctx = context_cached(dir);
  g_assert_cmpstr(vkrt_context_pipeline_cache_file(ctx), ==, path);
  g_assert_cmpuint(vkrt_context_pipeline_cache_loaded(ctx), ==, 0);
  float got[PC_M * PC_N];
  run_small(ctx, got);
  g_assert_cmpmem(got, sizeof got, want, sizeof got);
  context_free_clean(ctx);
}

/* Round trip: a fresh run writes the file, the next context starts from it, results are the same.
 * Truncated, corrupt, foreign (another device, another driver build, bad lengths) and oversized
 * files are ignored; a folder that cannot be created costs nothing but the cache. */
static void test_pipeline_cache(void)
{
  GError *e = NULL;
  char *tmp = g_dir_make_tmp("jf-vkrt-cache-XXXXXX", &e);
  g_assert_no_error(e);
  char *dir = g_build_filename(tmp, "pipelines", NULL);  /* made by the save */

  VkrtContext *ctx = context_cached(dir);
  char *path = g_strdup(vkrt_context_pipeline_cache_file(ctx));
  char *expect = vkrt_pipeline_cache_file(dir, vkrt_context_info(ctx));
  g_assert_cmpstr(path, ==, expect);
  g_free(expect);
  g_assert_null(vkrt_pipeline_cache_file(NULL, vkrt_context_info(ctx)));
  g_assert_null(vkrt_pipeline_cache_file("", vkrt_context_info(ctx)));
  g_assert_cmpuint(vkrt_context_pipeline_cache_loaded(ctx), ==, 0);
  float want[PC_M * PC_N], got[PC_M * PC_N];
  run_small(ctx, want);
  g_assert_false(isnan(want[0]));
  uint64_t built = vkrt_context_pipelines_created(ctx);
  g_assert_cmpuint(built, >=, 2);
  g_assert_cmpfloat(vkrt_context_pipeline_ms(ctx), >, 0.0);
  context_free_clean(ctx);

  char *good = NULL;
  gsize good_size = 0;
  g_assert_true(g_file_get_contents(path, &good, &good_size, &e));
  g_assert_no_error(e);
  g_assert_cmpuint(good_size, >=, PC_WRAP + 32);
  /* no temporary file left next to it */
  GDir *d = g_dir_open(dir, 0, &e);
  g_assert_no_error(e);
  int n_files = 0;
  while (g_dir_read_name(d)) n_files++;
  g_dir_close(d);
  g_assert_cmpint(n_files, ==, 1);

  /* the second context starts from the file; same pipelines, same results */
  ctx = context_cached(dir);
  g_assert_cmpuint(vkrt_context_pipeline_cache_loaded(ctx), ==, good_size - PC_WRAP);
  run_small(ctx, got);
  g_assert_cmpmem(got, sizeof got, want, sizeof want);
  g_assert_cmpuint(vkrt_context_pipelines_created(ctx), ==, built);
  /* nothing new to save is not an error; saving twice neither */
  g_assert_true(vkrt_context_save_pipeline_cache(ctx, &e));
  g_assert_true(vkrt_context_save_pipeline_cache(ctx, &e));
  g_assert_no_error(e);
  context_free_clean(ctx);

  /* damaged and foreign files: the wrapper (magic, size, SHA-256) first */
  g_assert_cmpmem(good, 8, "JFPIPEC1", 8);
  expect_ignored(dir, path, good, 20, want, "truncated inside the wrapper");
  expect_ignored(dir, path, "", 0, want, "empty");
  expect_ignored(dir, path, good, good_size - 1, want, "one byte short");
  {
    char junk[4096];
    for (gsize i = 0; i < sizeof junk; i++) junk[i] = (char)(i * 131 + 7);
    expect_ignored(dir, path, junk, sizeof junk, want, "random bytes");
  }
  char *bad = g_memdup2(good, good_size);
  bad[good_size - 1] ^= 0x10;
  expect_ignored(dir, path, bad, good_size, want, "last byte flipped (checksum)");
  memcpy(bad, good, good_size);
  bad[8] ^= 0x01;
  expect_ignored(dir, path, bad, good_size, want, "size field off by one");
  /* then Vulkan's header inside a well-formed wrapper (the checksum made to match) */
  uint8_t *vk = (uint8_t *)bad + PC_WRAP;
  memcpy(bad, good, good_size);
  vk[8] ^= 0x5a;  /* vendorID */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "another vendor");
  memcpy(bad, good, good_size);
  vk[12] ^= 0x01;  /* deviceID */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "another device");
  memcpy(bad, good, good_size);
  vk[16 + 15] ^= 0x80;  /* pipelineCacheUUID */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "another driver build");
  memcpy(bad, good, good_size);
  vk[4] = 7;  /* headerVersion */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "unknown header version");
  memcpy(bad, good, good_size);
  vk[0] = 16, vk[1] = vk[2] = vk[3] = 0;  /* headerSize below the header */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "header length too small");
  memcpy(bad, good, good_size);
  vk[0] = vk[1] = vk[2] = vk[3] = 0x7f;  /* headerSize beyond the data */
  expect_ignored(dir, path, bad, rewrap(bad, good_size), want, "header length beyond the data");
  memcpy(bad, good, good_size);
  /* a whole wrapper around less than Vulkan's header */
  expect_ignored(dir, path, bad, rewrap(bad, PC_WRAP + 20), want, "payload shorter than Vulkan's header");
  g_free(bad);
  /* a folder where the file should be: ignored, and the save fails quietly */
  g_assert_cmpint(g_unlink(path), ==, 0);
  g_assert_cmpint(g_mkdir(path, 0700), ==, 0);
  expect_ignored(dir, path, NULL, 0, want, "a folder");
  g_assert_true(g_file_test(path, G_FILE_TEST_IS_DIR));
  g_assert_cmpint(g_rmdir(path), ==, 0);
  expect_ignored(dir, path, NULL, 0, want, "missing");
  /* ... which wrote a good one again */
  ctx = context_cached(dir);
  g_assert_cmpuint(vkrt_context_pipeline_cache_loaded(ctx), >, 0);
  context_free_clean(ctx);

  /* a cache folder that cannot exist (its parent is a file): the context works, free is quiet */
  char *file = g_build_filename(tmp, "a-file", NULL);
  write_file(file, "x", 1);
  char *nodir = g_build_filename(file, "pipelines", NULL);
  ctx = context_cached(nodir);
  run_small(ctx, got);
  g_assert_cmpmem(got, sizeof got, want, sizeof want);
  g_assert_false(vkrt_context_save_pipeline_cache(ctx, &e));
  g_assert_nonnull(e);
  g_clear_error(&e);
  context_free_clean(ctx);
  g_assert_false(g_file_test(nodir, G_FILE_TEST_EXISTS));

  /* no folder: nothing read or written */
  ctx = context_new(NULL);
  g_assert_null(vkrt_context_pipeline_cache_file(ctx));
  g_assert_true(vkrt_context_save_pipeline_cache(ctx, &e));
  context_free_clean(ctx);

  g_unlink(file);
  g_unlink(path);
  g_rmdir(dir);
  g_rmdir(tmp);
  g_free(nodir);
  g_free(file);
  g_free(good);
  g_free(path);
  g_free(dir);
  g_free(tmp);
}

/* Record-only: submits build the pipelines and run nothing; afterwards the same work builds none. */
static void test_record_only(void)
{
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  VkrtBuffer *b = vkrt_buffer_new(ctx, 64, &e);
  test_check_no_error(e);
  float one[16];
  for (int i = 0; i < 16; i++) one[i] = 1.0f;
  g_assert_true(vkrt_buffer_write(b, 0, one, sizeof one, &e));
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  uint64_t p0 = vkrt_context_pipelines_created(ctx), n0 = vkrt_context_submits(ctx);
  vkrt_context_set_record_only(ctx, true);
  g_assert_true(vkrt_context_record_only(ctx));
  vkrt_op_add(s, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), 16);
  g_assert_true(vkrt_seq_submit(s, &e));
  g_assert_true(vkrt_seq_replay(s, &e));
  test_check_no_error(e);
  g_assert_cmpuint(vkrt_context_pipelines_created(ctx), ==, p0 + 1);
  g_assert_cmpuint(vkrt_context_submits(ctx), ==, n0);
  float back[16];
  g_assert_true(vkrt_buffer_read(b, 0, back, sizeof back, &e));
  g_assert_cmpfloat(back[3], ==, 1.0f);  /* nothing ran */
  vkrt_context_set_record_only(ctx, false);
  vkrt_seq_begin(s);
  vkrt_op_add(s, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), 16);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_assert_cmpuint(vkrt_context_pipelines_created(ctx), ==, p0 + 1);
  g_assert_true(vkrt_buffer_read(b, 0, back, sizeof back, &e));
  g_assert_cmpfloat(back[3], ==, 2.0f);
  vkrt_seq_free(s);
  vkrt_buffer_free(b);
  context_free_clean(ctx);
}

/* JANUSFLOW_PROFILE=1: the context prints GPU time per shader when freed, replays included */
static void test_profile(void)
{
  if (g_test_subprocess()) {
    g_setenv("JANUSFLOW_PROFILE", "1", TRUE);
    VkrtContext *ctx = context_new(NULL);
    GError *e = NULL;
    VkrtBuffer *b = vkrt_buffer_new(ctx, 64, &e);
    VkrtSeq *s = vkrt_seq_new(ctx, &e);
    test_check_no_error(e);
    vkrt_seq_begin(s);
    vkrt_op_add(s, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), 16);
    g_assert_true(vkrt_seq_submit(s, &e));
    g_assert_true(vkrt_seq_replay(s, &e));
    g_assert_true(vkrt_seq_replay(s, &e));
    test_check_no_error(e);
    g_assert_true(vkrt_context_info(ctx)->has_timestamps);
    vkrt_seq_free(s);
    vkrt_buffer_free(b);
    context_free_clean(ctx);
    return;
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed();
  g_test_trap_assert_stderr("*GPU time per shader (JANUSFLOW_PROFILE)*");
  g_test_trap_assert_stderr("*eltwise_add* 3 *");
}

/* Asynchronous submits (decode records token t+1 while token t runs): two sequences chained
 * through one buffer run in submission order; work on a pending sequence waits for it first;
 * a recording dropped unrun counts no FLOPs; FLOPs, timings and results as with submit. */
static void test_submit_async(void)
{
  VkrtContext *ctx = context_new(NULL);
  GError *e = NULL;
  enum { N = 1000 };
  VkrtBuffer *b = vkrt_buffer_new(ctx, N * 4, &e);
  test_check_no_error(e);
  float *v = g_new(float, N);
  for (int i = 0; i < N; i++) v[i] = (float)i;
  g_assert_true(vkrt_buffer_write(b, 0, v, N * 4, &e));
  VkrtSeq *a = vkrt_seq_new(ctx, &e), *c = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  g_assert_false(vkrt_seq_pending(a));
  g_assert_true(vkrt_seq_wait(a, &e));  /* nothing in flight */
  vkrt_context_reset_flops(ctx);
  uint64_t rec0 = vkrt_context_recorded_flops(ctx);
  /* b doubles in a, then doubles again in c (recorded while a is in flight) */
  vkrt_seq_begin(a);
  vkrt_seq_mark(a, "start");
  vkrt_op_add(a, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), N);
  vkrt_seq_mark(a, "add");
  g_assert_true(vkrt_seq_submit_async(a, &e));
  test_check_no_error(e);
  g_assert_true(vkrt_seq_pending(a));
  vkrt_seq_begin(c);
  vkrt_op_add(c, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), N);
  g_assert_true(vkrt_seq_submit_async(c, &e));
  g_assert_true(vkrt_seq_wait(a, &e));
  g_assert_true(vkrt_seq_wait(c, &e));
  test_check_no_error(e);
  g_assert_false(vkrt_seq_pending(a));
  g_assert_true(vkrt_buffer_read(b, 0, v, N * 4, &e));
  for (int i = 0; i < N; i++) g_assert_cmpfloat(v[i], ==, 4.0f * (float)i);
  uint32_t nt = 0;
  vkrt_seq_timings(a, &nt);
  if (vkrt_context_info(ctx)->has_timestamps) g_assert_cmpuint(nt, ==, 2);
  uint64_t f = vkrt_context_flops(ctx);
  g_assert_cmpuint(f, ==, vkrt_context_recorded_flops(ctx) - rec0);
  /* a recording that never runs: recorded, not counted */
  vkrt_seq_begin(a);
  vkrt_op_matmul(a, vkrt_tensor_sub(vkrt_tensor(b), 0, 32), vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor_none(), 1, 8,
                 8, 0);
  g_assert_cmpuint(vkrt_context_recorded_flops(ctx) - rec0, ==, f + 2 * 8 * 8);
  g_assert_cmpuint(vkrt_context_flops(ctx), ==, f);
  /* begin and replay on a pending sequence wait for it */
  g_assert_true(vkrt_seq_submit_async(c, &e));
  g_assert_true(vkrt_seq_pending(c));
  g_assert_true(vkrt_seq_replay(c, &e));  /* waits, then runs again: x16 */
  test_check_no_error(e);
  g_assert_true(vkrt_seq_submit_async(c, &e));
  vkrt_seq_begin(c);                      /* waits: x32, and drops the recording */
  g_assert_false(vkrt_seq_pending(c));
  vkrt_seq_begin(a);
  vkrt_op_add(a, vkrt_tensor(b), vkrt_tensor(b), vkrt_tensor(b), N);
  g_assert_true(vkrt_seq_submit_async(a, &e));  /* x64 */
  vkrt_seq_free(a);                       /* free waits for it */
  g_assert_true(vkrt_buffer_read(b, 0, v, N * 4, &e));
  test_check_no_error(e);
  for (int i = 0; i < N; i++) g_assert_cmpfloat(v[i], ==, 64.0f * (float)i);
  vkrt_seq_free(c);
  vkrt_buffer_free(b);
  g_free(v);
  context_free_clean(ctx);
}

/* JANUSFLOW_HOST_MAPPED=0: device buffers unmapped (reads and writes through staging, a
 * transfer submit each), host buffers (vkrt_buffer_new_host) mapped: memcpy, no submit, and
 * kernels read and write them like any other. */
static void test_host_buffers(void)
{
  if (g_test_subprocess()) {
    g_setenv("JANUSFLOW_HOST_MAPPED", "0", TRUE);
    VkrtContext *ctx = context_new(NULL);
    GError *e = NULL;
    g_assert_false(vkrt_context_host_mapped(ctx));
    enum { N = 300 };
    float v[N], back[N];
    for (int i = 0; i < N; i++) v[i] = (float)i - 7.5f;
    VkrtBuffer *d = vkrt_buffer_new(ctx, sizeof v, &e), *h = vkrt_buffer_new_host(ctx, sizeof v, &e);
    test_check_no_error(e);
    g_assert_false(vkrt_buffer_mapped(d));
    g_assert_true(vkrt_buffer_mapped(h));
    uint64_t n0 = vkrt_context_submits(ctx);
    g_assert_true(vkrt_buffer_write(d, 0, v, sizeof v, &e));
    g_assert_cmpuint(vkrt_context_submits(ctx), ==, n0 + 1);
    g_assert_true(vkrt_buffer_write(h, 0, v, sizeof v, &e));
    g_assert_true(vkrt_buffer_read(h, 0, back, sizeof back, &e));
    g_assert_cmpuint(vkrt_context_submits(ctx), ==, n0 + 1);
    /* h = h + d on the GPU, then d = h + h: both kinds as inputs and outputs */
    VkrtSeq *s = vkrt_seq_new(ctx, &e);
    test_check_no_error(e);
    vkrt_op_add(s, vkrt_tensor(h), vkrt_tensor(h), vkrt_tensor(d), N);
    vkrt_op_add(s, vkrt_tensor(d), vkrt_tensor(h), vkrt_tensor(h), N);
    g_assert_true(vkrt_seq_submit(s, &e));
    test_check_no_error(e);
    g_assert_true(vkrt_buffer_read(h, 0, back, sizeof back, &e));
    for (int i = 0; i < N; i++) g_assert_cmpfloat(back[i], ==, 2.0f * v[i]);
    g_assert_true(vkrt_buffer_read(d, 0, back, sizeof back, &e));
    test_check_no_error(e);
    for (int i = 0; i < N; i++) g_assert_cmpfloat(back[i], ==, 4.0f * v[i]);
    vkrt_seq_free(s);
    vkrt_buffer_free(d);
    vkrt_buffer_free(h);
    context_free_clean(ctx);
    return;
  }
  g_test_trap_subprocess(NULL, 0, G_TEST_SUBPROCESS_DEFAULT);
  g_test_trap_assert_passed();
}

/* Which bindings a shader writes, from its SPIR-V: the barrier logic below trusts it. */
static void test_spirv_written(void)
{
  /* y (read-write), texel operands, a readonly bias */
  g_assert_cmphex(vkrt_shader_written_bindings("matmul_gemm"), ==, 0x1);
  g_assert_cmphex(vkrt_shader_written_bindings("matmul_generic"), ==, 0x1);
  /* writeonly O, readonly q and mask, texel K/V */
  g_assert_cmphex(vkrt_shader_written_bindings("attention"), ==, 0x1);
  g_assert_cmphex(vkrt_shader_written_bindings("eltwise_add"), ==, 0x1);
  g_assert_cmphex(vkrt_shader_written_bindings("eltwise_add4"), ==, 0x1);
  /* the GEMM form's score kernel writes the scratch (binding 0) only */
  g_assert_cmphex(vkrt_shader_written_bindings("attn_gemm_qk") & 0x1, ==, 0x1);
  /* not readable: every binding counts as written */
  static const uint32_t junk[] = { 0x07230203u, 0x10000, 0, 5, 0, 0xffff0047u };
  g_assert_cmphex(vkrt_spirv_written_bindings(junk, sizeof junk), ==, 0xffffffffu);
  g_assert_cmphex(vkrt_spirv_written_bindings(junk, 8), ==, 0xffffffffu);
  g_assert_cmphex(vkrt_shader_written_bindings("no_such_shader"), ==, 0xffffffffu);
}

/* Barriers only between commands that conflict: independent commands share none, a read of an
 * earlier write, a write over an earlier read and a write over an earlier write each get one,
 * disjoint halves of one buffer are independent; JANUSFLOW_BARRIERS=all puts one after every
 * command; the results are the same either way. (On lavapipe commands run one after the other
 * anyway: the syncval runs of tools/mesa-next check that no needed barrier is missing.) */
static uint32_t barrier_chain(VkrtContext *ctx, float *out)
{
  enum { N = 1000, H = N / 2 };
  GError *e = NULL;
  VkrtBuffer *x = vkrt_buffer_new(ctx, N * 4, &e), *y1 = vkrt_buffer_new(ctx, N * 4, &e);
  VkrtBuffer *y2 = vkrt_buffer_new(ctx, N * 4, &e), *y3 = vkrt_buffer_new(ctx, N * 4, &e);
  test_check_no_error(e);
  float *v = g_new(float, N);
  for (int i = 0; i < N; i++) v[i] = (float)i;
  g_assert_true(vkrt_buffer_write(x, 0, v, N * 4, &e));
  VkrtSeq *s = vkrt_seq_new(ctx, &e);
  test_check_no_error(e);
  VkrtTensor tx = vkrt_tensor(x), t1 = vkrt_tensor(y1), t2 = vkrt_tensor(y2), t3 = vkrt_tensor(y3);
  vkrt_seq_begin(s);
  vkrt_op_add(s, t1, tx, tx, N);  /* y1 = 2i */
  vkrt_op_add(s, t2, tx, tx, N);  /* y2 = 2i: independent of the first */
  uint32_t independent = vkrt_seq_barrier_count(s);
  vkrt_op_add(s, t3, t1, t2, N);  /* y3 = 4i: reads what both wrote */
  uint32_t after_raw = vkrt_seq_barrier_count(s);
  vkrt_op_add(s, tx, t1, t1, N);  /* x = 4i: writes what the first two read, before that barrier */
  uint32_t after_old_war = vkrt_seq_barrier_count(s);
  vkrt_op_add(s, t1, t2, t2, N);  /* y1 = 4i: writes y1, which the last two read */
  uint32_t after_war = vkrt_seq_barrier_count(s);
  vkrt_op_add(s, vkrt_tensor_sub(t3, 0, H * 4), vkrt_tensor_sub(tx, 0, H * 4), vkrt_tensor_sub(tx, 0, H * 4), H);
  vkrt_op_add(s, vkrt_tensor_sub(t3, H * 4, H * 4), vkrt_tensor_sub(tx, H * 4, H * 4),
              vkrt_tensor_sub(tx, H * 4, H * 4), H);  /* y3 = 8i, in two disjoint halves */
  uint32_t total = vkrt_seq_barrier_count(s);
  g_assert_true(vkrt_seq_submit(s, &e));
  test_check_no_error(e);
  g_assert_true(vkrt_buffer_read(y1, 0, out, N * 4, &e));
  g_assert_true(vkrt_buffer_read(y3, 0, out + N, N * 4, &e));
  test_check_no_error(e);
  for (int i = 0; i < N; i++) {
    g_assert_cmpfloat(out[i], ==, 4.0f * i);
    g_assert_cmpfloat(out[N + i], ==, 8.0f * i);
  }
  if (!ctx->barrier_all) {
    g_assert_cmpuint(independent, ==, 0);
    g_assert_cmpuint(after_raw, ==, 1);
    g_assert_cmpuint(after_old_war, ==, 1);
    g_assert_cmpuint(after_war, ==, 2);
    g_assert_cmpuint(total, ==, 2);
  }
  vkrt_seq_free(s);
  vkrt_buffer_free(x); vkrt_buffer_free(y1); vkrt_buffer_free(y2); vkrt_buffer_free(y3);
  g_free(v);
  return total;
}

static void test_barriers(void)
{
  float out[2000];
  VkrtContext *ctx = context_new(NULL);
  g_assert_cmpuint(barrier_chain(ctx, out), ==, 2);
  context_free_clean(ctx);
  g_setenv("JANUSFLOW_BARRIERS", "all", TRUE);
  ctx = context_new(NULL);
  g_unsetenv("JANUSFLOW_BARRIERS");
  g_assert_cmpuint(barrier_chain(ctx, out), ==, 7);
  context_free_clean(ctx);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/vkrt/devices", test_devices);
  g_test_add_func("/vkrt/buffers", test_buffers);
  g_test_add_func("/vkrt/windows", test_windows);
  g_test_add_func("/vkrt/replay-timestamps", test_replay_timestamps);
  g_test_add_func("/vkrt/fault-injection", test_fault_injection);
  g_test_add_func("/vkrt/validation-hook", test_validation_hook);
  g_test_add_func("/vkrt/pipeline-cache", test_pipeline_cache);
  g_test_add_func("/vkrt/record-only", test_record_only);
  g_test_add_func("/vkrt/profile", test_profile);
  g_test_add_func("/vkrt/submit-async", test_submit_async);
  g_test_add_func("/vkrt/host-buffers", test_host_buffers);
  g_test_add_func("/vkrt/spirv-written", test_spirv_written);
  g_test_add_func("/vkrt/barriers", test_barriers);
  return g_test_run();
}
