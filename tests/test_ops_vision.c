/* Vision ops (vk/ops_vision.h) against the plain-C references on random inputs, including sizes
 * that are not multiples of any workgroup or tile size. */
#include "ops_vision.h"
#include "ops.h"
#include "ref_ops_vision.h"
#include "test_util.h"
#include <math.h>

static VkrtContext *ctx;
static GRand *rng;

/* A buffer that is exactly the data: a binding reaching past the tensor's end would be caught. */
static VkrtBuffer *upload(const void *data, uint64_t bytes) { return test_upload_span(ctx, data, bytes, 0, 0); }

/* A buffer holding `bytes` of data after `lead` bytes of NaN, and the view of the data: ops must
 * take views whose offset is off the device's binding alignment. */
static VkrtTensor upload_at(const void *data, uint64_t bytes, uint64_t lead)
{
  return vkrt_tensor_sub(vkrt_tensor(test_upload_span(ctx, data, bytes, lead, 0)), lead, bytes);
}

static void download_view(VkrtTensor t, void *data, uint64_t bytes) { test_download(t.buf, t.offset, data, bytes); }

/* --- layernorm ------------------------------------------------------------------------------ */

static void check_layernorm_shifted(uint32_t rows, uint32_t dim)
{
  size_t n = (size_t)rows * dim;
  float *x = test_rand_f32(rng, n, -2, 2);
  uint16_t *w = test_rand_bf16(rng, dim, -1.5, 1.5), *b = test_rand_bf16(rng, dim, -0.5, 0.5);
  float *want = g_new(float, n), *got = g_new(float, n);
  ref_layernorm(want, x, w, b, rows, dim, 1e-5f);
  VkrtTensor tx = upload_at(x, n * 4, 12), ty = upload_at(NULL, n * 4, 20);
  VkrtTensor tw = upload_at(w, dim * 2, 2), tb = upload_at(b, dim * 2, 6);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_layernorm(seq, ty, tx, tw, tb, rows, dim, 1e-5f);
  test_seq_run_free(seq);
  download_view(ty, got, n * 4);
  double e = test_rel_l2(got, want, n, NULL);
  g_test_message("layernorm rows=%u dim=%u at unaligned offsets: rel-L2 %.3g", rows, dim, e);
  g_assert_cmpfloat(e, <, 1e-4);
  vkrt_buffer_free(tx.buf); vkrt_buffer_free(ty.buf); vkrt_buffer_free(tw.buf); vkrt_buffer_free(tb.buf);
  g_free(x); g_free(w); g_free(b); g_free(want); g_free(got);
}

static void check_layernorm(uint32_t rows, uint32_t dim, float offset, gboolean in_place)
{
  size_t n = (size_t)rows * dim;
  float *x = test_rand_f32(rng, n, offset - 2.0, offset + 2.0);
  uint16_t *w = test_rand_bf16(rng, dim, -1.5, 1.5), *b = test_rand_bf16(rng, dim, -0.5, 0.5);
  float *want = g_new(float, n), *got = g_new(float, n);
  ref_layernorm(want, x, w, b, rows, dim, 1e-6f);

  VkrtBuffer *bx = upload(x, n * 4), *bw = upload(w, dim * 2), *bb = upload(b, dim * 2);
  VkrtBuffer *by = in_place ? bx : upload(NULL, n * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_layernorm(seq, vkrt_tensor(by), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor(bb), rows, dim, 1e-6f);
  test_seq_run_free(seq);
  test_download(by, 0, got, n * 4);
  double e = test_rel_l2(got, want, n, NULL);
  g_test_message("layernorm rows=%u dim=%u offset=%g in_place=%d: rel-L2 %.3g", rows, dim, offset, in_place, e);
  g_assert_cmpfloat(e, <, 1e-4);

  if (!in_place)
    vkrt_buffer_free(by);
  vkrt_buffer_free(bx);
  vkrt_buffer_free(bw);
  vkrt_buffer_free(bb);
  g_free(x); g_free(w); g_free(b); g_free(want); g_free(got);
}

static void test_layernorm(void)
{
  check_layernorm(1, 32, 0.0f, FALSE);
  check_layernorm(5, 100, 0.0f, FALSE);
  check_layernorm(37, 1024, 0.0f, FALSE);
  check_layernorm(3, 33, 0.0f, FALSE);      /* odd width: the bf16 parameters end mid-word */
  check_layernorm(7, 257, 100.0f, FALSE);   /* large mean: a one-pass variance would cancel */
  check_layernorm(19, 64, 1.0f, TRUE);      /* y == x */
  check_layernorm_shifted(9, 33);
}

static void test_layernorm_bad_args(void)
{
  GError *err = NULL;
  VkrtBuffer *bx = upload(NULL, 16 * 4), *bw = upload(NULL, 16 * 2);
  VkrtSeq *seq = test_seq_begin(ctx);
  /* 4 rows of 16 need 256 bytes; the buffer has 64 */
  vkrt_op_layernorm(seq, vkrt_tensor(bx), vkrt_tensor(bx), vkrt_tensor(bw), vkrt_tensor(bw), 4, 16, 1e-6f);
  g_assert_true(vkrt_seq_has_error(seq));
  g_assert_false(vkrt_seq_submit(seq, &err));
  g_assert_nonnull(err);
  g_assert_nonnull(strstr(err->message, "layernorm"));
  g_clear_error(&err);
  vkrt_seq_free(seq);
  vkrt_buffer_free(bx);
  vkrt_buffer_free(bw);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* --- im2col / patch embedding --------------------------------------------------------------- */

static void check_im2col(uint32_t c, uint32_t h, uint32_t w, uint32_t p)
{
  size_t nin = (size_t)c * h * w, nout = (size_t)(h / p) * (w / p) * c * p * p;
  float *x = test_rand_f32(rng, nin, -1, 1);
  float *want = g_new(float, nout), *got = g_new(float, nout);
  ref_im2col(want, x, c, h, w, p);
  VkrtBuffer *bx = upload(x, nin * 4), *by = upload(NULL, nout * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_im2col(seq, vkrt_tensor(by), vkrt_tensor(bx), c, h, w, p);
  test_seq_run_free(seq);
  test_download(by, 0, got, nout * 4);
  g_assert_cmpmem(got, nout * 4, want, nout * 4);  /* pure data movement: exact */
  vkrt_buffer_free(bx);
  vkrt_buffer_free(by);
  g_free(x); g_free(want); g_free(got);
}

static void check_im2col_shifted(uint32_t c, uint32_t h, uint32_t w, uint32_t p)
{
  size_t nin = (size_t)c * h * w, nout = (size_t)(h / p) * (w / p) * c * p * p;
  float *x = test_rand_f32(rng, nin, -1, 1), *want = g_new(float, nout), *got = g_new(float, nout);
  ref_im2col(want, x, c, h, w, p);
  VkrtTensor tx = upload_at(x, nin * 4, 8), ty = upload_at(NULL, nout * 4, 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_im2col(seq, ty, tx, c, h, w, p);
  test_seq_run_free(seq);
  download_view(ty, got, nout * 4);
  g_assert_cmpmem(got, nout * 4, want, nout * 4);
  vkrt_buffer_free(tx.buf); vkrt_buffer_free(ty.buf);
  g_free(x); g_free(want); g_free(got);
}

static void test_im2col(void)
{
  check_im2col_shifted(3, 40, 24, 8);
  check_im2col(3, 64, 64, 16);
  check_im2col(3, 37, 50, 7);   /* remainders on both axes are dropped */
  check_im2col(2, 9, 5, 1);
}

static void check_patch_embed(uint32_t c, uint32_t h, uint32_t w, uint32_t p, uint32_t out, gboolean bias)
{
  uint32_t n = (h / p) * (w / p), k = c * p * p;
  size_t nin = (size_t)c * h * w;
  float *x = test_rand_f32(rng, nin, -1, 1);
  uint16_t *wt = test_rand_bf16(rng, (size_t)out * k, -0.1, 0.1), *bs = test_rand_bf16(rng, out, -1, 1);
  float *want = g_new(float, (size_t)n * out), *got = g_new(float, (size_t)n * out);
  ref_patch_embed(want, x, wt, bias ? bs : NULL, c, h, w, p, out);
  VkrtBuffer *bx = upload(x, nin * 4), *bw = upload(wt, (size_t)out * k * 2), *bb = upload(bs, out * 2);
  VkrtBuffer *bcols = upload(NULL, (size_t)n * k * 4), *by = upload(NULL, (size_t)n * out * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_patch_embed(seq, vkrt_tensor(by), vkrt_tensor(bx), vkrt_tensor(bcols), vkrt_tensor(bw),
                      bias ? vkrt_tensor(bb) : vkrt_tensor_none(), c, h, w, p, out);
  test_seq_run_free(seq);
  test_download(by, 0, got, (size_t)n * out * 4);
  double e = test_rel_l2(got, want, (size_t)n * out, NULL);
  g_test_message("patch_embed %ux%ux%u p=%u out=%u: rel-L2 %.3g", c, h, w, p, out, e);
  g_assert_cmpfloat(e, <, 1e-4);
  vkrt_buffer_free(bx); vkrt_buffer_free(bw); vkrt_buffer_free(bb);
  vkrt_buffer_free(bcols); vkrt_buffer_free(by);
  g_free(x); g_free(wt); g_free(bs); g_free(want); g_free(got);
}

static void test_patch_embed(void)
{
  check_patch_embed(3, 64, 64, 16, 32, TRUE);
  check_patch_embed(3, 50, 45, 8, 70, TRUE);
  check_patch_embed(3, 30, 30, 5, 17, FALSE);
}

/* --- add_bf16 ------------------------------------------------------------------------------- */

static void check_add_bf16(uint32_t n, gboolean with_a, gboolean in_place)
{
  float *a = test_rand_f32(rng, n, -3, 3);
  uint16_t *b = test_rand_bf16(rng, n, -3, 3);
  float *want = g_new(float, n ? n : 1), *got = g_new(float, n ? n : 1);
  ref_add_bf16(want, with_a ? a : NULL, b, n);
  VkrtBuffer *ba = upload(a, (uint64_t)n * 4), *bb = upload(b, (uint64_t)n * 2);
  VkrtBuffer *by = in_place ? ba : upload(NULL, (uint64_t)n * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_add_bf16(seq, vkrt_tensor(by), with_a ? vkrt_tensor(ba) : vkrt_tensor_none(), vkrt_tensor(bb), n);
  test_seq_run_free(seq);
  test_download(by, 0, got, (uint64_t)n * 4);
  double e = test_rel_l2(got, want, n, NULL);
  g_test_message("add_bf16 n=%u a=%d in_place=%d: rel-L2 %.3g", n, with_a, in_place, e);
  g_assert_cmpfloat(e, <, 1e-6);
  if (!in_place)
    vkrt_buffer_free(by);
  vkrt_buffer_free(ba);
  vkrt_buffer_free(bb);
  g_free(a); g_free(b); g_free(want); g_free(got);
}

static void check_add_bf16_shifted(uint32_t n)
{
  float *a = test_rand_f32(rng, n, -3, 3), *want = g_new(float, n), *got = g_new(float, n);
  uint16_t *b = test_rand_bf16(rng, n, -3, 3);
  ref_add_bf16(want, a, b, n);
  VkrtTensor ta = upload_at(a, (uint64_t)n * 4, 4), tb = upload_at(b, (uint64_t)n * 2, 2);
  VkrtTensor ty = upload_at(NULL, (uint64_t)n * 4, 36);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_add_bf16(seq, ty, ta, tb, n);
  test_seq_run_free(seq);
  download_view(ty, got, (uint64_t)n * 4);
  g_assert_cmpfloat(test_rel_l2(got, want, n, NULL), <, 1e-6);
  vkrt_buffer_free(ta.buf); vkrt_buffer_free(tb.buf); vkrt_buffer_free(ty.buf);
  g_free(a); g_free(b); g_free(want); g_free(got);
}

static void test_add_bf16(void)
{
  check_add_bf16_shifted(333);
  check_add_bf16(1000, TRUE, FALSE);
  check_add_bf16(1001, TRUE, FALSE);   /* odd: the last bf16 sits in the low half of a word */
  check_add_bf16(16 * 32 + 7, FALSE, FALSE);
  check_add_bf16(70001, TRUE, TRUE);   /* more than one row of workgroups, y == a */
}

/* The same checks with the binding range lowered to 16 KiB (JANUSFLOW_MAX_BINDING), so that
 * every op has to split its tensors into windows. */
static void test_windows(void)
{
  VkrtContext *saved = ctx;
  ctx = test_context_new_max_binding("16384");
  g_assert_cmpuint(vkrt_max_binding(ctx, false), <=, 16384);
  check_layernorm(200, 100, 0.0f, FALSE);    /* 80 KB: several row windows */
  check_layernorm(41, 1000, 0.5f, TRUE);
  check_layernorm_shifted(50, 33);
  check_im2col(3, 64, 64, 16);               /* bands of patch rows, one channel at a time */
  check_im2col(3, 37, 50, 7);
  check_im2col_shifted(3, 40, 24, 8);
  check_patch_embed(3, 64, 64, 16, 32, TRUE);
  check_add_bf16(70001, TRUE, FALSE);
  check_add_bf16(9999, FALSE, FALSE);
  check_add_bf16_shifted(12345);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
  ctx = saved;
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  ctx = test_context_new(false);
  if (!ctx)
    return 1;
  rng = g_rand_new_with_seed(1234);
  g_test_add_func("/ops_vision/layernorm", test_layernorm);
  g_test_add_func("/ops_vision/layernorm_bad_args", test_layernorm_bad_args);
  g_test_add_func("/ops_vision/im2col", test_im2col);
  g_test_add_func("/ops_vision/patch_embed", test_patch_embed);
  g_test_add_func("/ops_vision/add_bf16", test_add_bf16);
  g_test_add_func("/ops_vision/windows", test_windows);
  int rc = g_test_run();
  g_rand_free(rng);
  vkrt_context_free(ctx);
  return rc;
}
