/* Generation ops (vk/ops_gen.h) against the plain-C references on random inputs, with sizes that
 * are not multiples of any tile, and again on a context whose bindings are limited to 64 KiB
 * (JANUSFLOW_MAX_BINDING) so that every windowing path runs. */
#include "ops_gen.h"
#include "ref_ops_gen.h"
#include "test_util.h"
#include <math.h>

static VkrtContext *ctx;   /* the context the checks use (switched by the small-binding test) */
static GRand *rng;

/* A buffer with `pad` leading bytes, so tensors start at unaligned-to-binding offsets, and the
 * tensor's place in it: the checks pass tensors around as one value. */
typedef struct { VkrtBuffer *buf; uint64_t pad, bytes; } TBuf;

static TBuf upload_at(const void *data, uint64_t bytes, uint64_t pad)
{
  return (TBuf){ test_upload_span(ctx, data, bytes, pad, 4), pad, bytes };
}
static TBuf upload(const void *data, uint64_t bytes) { return upload_at(data, bytes, 0); }
static VkrtTensor tens(TBuf t) { return vkrt_tensor_sub(vkrt_tensor(t.buf), t.pad, t.bytes); }
static void download(TBuf t, void *data) { test_download(t.buf, t.pad, data, t.bytes); }
static void tfree(TBuf t) { vkrt_buffer_free(t.buf); }

static void expect_close(const char *what, const float *got, const float *want, size_t n, double tol)
{
  double e = test_rel_l2(got, want, n, NULL);
  g_test_message("%s: rel-L2 %.3g", what, e);
  if (!(e < tol))
    g_test_message("%s: FAILED (tolerance %g)", what, tol);
  g_assert_cmpfloat(e, <, tol);
}

/* --- kernel forms ----------------------------------------------------------------------------- */

/* conv2d / gemm_f32 have a tiled (GPU) and a register-blocked (CPU) form: run both. */
static const char *form_name(void)
{
  const char *e = g_getenv("JANUSFLOW_CONV_KERNEL");
  return e ? e : "default";
}

static void for_each_form(void (*fn)(void))
{
  static const char *const forms[] = { "reg", "tiled" };
  for (int i = 0; i < 2; i++) {
    g_setenv("JANUSFLOW_CONV_KERNEL", forms[i], TRUE);
    fn();
  }
  g_unsetenv("JANUSFLOW_CONV_KERNEL");
}

/* --- conv2d ---------------------------------------------------------------------------------- */

static void check_conv(RefConv rc, uint64_t pad_bytes)
{
  uint32_t s = rc.upsample ? 2 : 1;
  uint32_t ho = (rc.in_h * s + 2 * rc.pad - rc.kh) / rc.stride + 1;
  uint32_t wo = (rc.in_w * s + 2 * rc.pad - rc.kw) / rc.stride + 1;
  size_t nx = (size_t)rc.batch * rc.in_h * rc.in_w * rc.in_c, ny = (size_t)rc.batch * ho * wo * rc.out_c;
  size_t nw = (size_t)rc.out_c * rc.in_c * rc.kh * rc.kw;
  float *x = test_rand_f32(rng, nx, -1, 1), *y0 = test_rand_f32(rng, ny, -1, 1);
  uint16_t *w = test_rand_bf16(rng, nw, -0.5, 0.5), *bias = test_rand_bf16(rng, rc.out_c, -1, 1);
  uint16_t *wr = g_new(uint16_t, nw);
  vkrt_conv_weight_reorder(wr, w, rc.out_c, rc.in_c, rc.kh, rc.kw);
  float *want = g_memdup2(y0, ny * 4), *got = g_new(float, ny);
  uint32_t rho, rwo;
  ref_conv2d(want, x, w, bias, &rc, &rho, &rwo);
  g_assert_cmpuint(rho, ==, ho);
  g_assert_cmpuint(rwo, ==, wo);

  TBuf bx = upload_at(x, nx * 4, pad_bytes), by = upload_at(y0, ny * 4, pad_bytes);
  TBuf bw = upload_at(wr, nw * 2, pad_bytes ? 2 : 0), bb = upload(bias, rc.out_c * 2);
  VkrtConvParams p = {
    .batch = rc.batch, .in_h = rc.in_h, .in_w = rc.in_w, .in_c = rc.in_c, .out_c = rc.out_c,
    .kernel_h = rc.kh, .kernel_w = rc.kw, .stride = rc.stride, .pad = rc.pad,
    .flags = (rc.accumulate ? VKRT_CONV_ACCUMULATE : 0) | (rc.upsample ? VKRT_CONV_UPSAMPLE2X : 0) |
             (rc.in_nchw ? VKRT_CONV_IN_NCHW : 0) | (rc.out_nchw ? VKRT_CONV_OUT_NCHW : 0),
  };
  uint64_t flops0 = vkrt_context_flops(ctx);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_conv2d(seq, tens(by), tens(bx), tens(bw), tens(bb), &p);
  test_seq_run_free(seq);
  g_assert_cmpuint(vkrt_context_flops(ctx) - flops0, ==, 2ull * rc.batch * ho * wo * rc.out_c * rc.in_c * rc.kh * rc.kw);
  download(by, got);
  char *what = g_strdup_printf("conv2d B%u %ux%ux%u -> %u k%ux%u s%u p%u acc%d up%d nchw%d/%d pad%" G_GUINT64_FORMAT
                               " (%s)", rc.batch, rc.in_h, rc.in_w, rc.in_c, rc.out_c, rc.kh, rc.kw, rc.stride,
                               rc.pad, rc.accumulate, rc.upsample, rc.in_nchw, rc.out_nchw, pad_bytes, form_name());
  expect_close(what, got, want, ny, 1e-4);
  g_free(what);
  tfree(bx); tfree(by); tfree(bw); tfree(bb);
  g_free(x); g_free(y0); g_free(w); g_free(wr); g_free(bias); g_free(want); g_free(got);
}

static void conv_cases(bool big)
{
  /* 3x3 same padding, channels and pixels not multiples of the 64x64 tile */
  check_conv((RefConv){ .batch = 2, .in_h = 13, .in_w = 11, .in_c = 5, .out_c = 70, .kh = 3, .kw = 3,
                        .stride = 1, .pad = 1 }, 0);
  /* the UViT in_conv: k2 s2 from an NCHW latent */
  check_conv((RefConv){ .batch = 2, .in_h = 8, .in_w = 8, .in_c = 4, .out_c = 32, .kh = 2, .kw = 2,
                        .stride = 2, .pad = 0, .in_nchw = true }, 4);
  /* 1x1 conv, fused residual, NCHW output (conv_out-like small N) */
  check_conv((RefConv){ .batch = 3, .in_h = 9, .in_w = 10, .in_c = 33, .out_c = 3, .kh = 1, .kw = 1,
                        .stride = 1, .pad = 0, .accumulate = true, .out_nchw = true }, 8);
  /* fused nearest 2x upsampling before a 3x3 conv */
  check_conv((RefConv){ .batch = 1, .in_h = 5, .in_w = 7, .in_c = 16, .out_c = 24, .kh = 3, .kw = 3,
                        .stride = 1, .pad = 1, .upsample = true }, 0);
  /* in_c % 8 == 0 at a 16-byte-aligned nonzero offset: texel operands on the CPU form */
  check_conv((RefConv){ .batch = 2, .in_h = 9, .in_w = 7, .in_c = 24, .out_c = 40, .kh = 3, .kw = 3,
                        .stride = 1, .pad = 1, .accumulate = true }, 32);
  /* the CPU form numbers invocations channel tile first: 3 tiles of 16 (the last partial) and
   * pixel tiles that cross rows and images (w < 16), texel operands */
  check_conv((RefConv){ .batch = 3, .in_h = 5, .in_w = 6, .in_c = 16, .out_c = 40, .kh = 3, .kw = 3,
                        .stride = 1, .pad = 1, .accumulate = true }, 16);
  /* one partial channel tile (the VAE's conv_out: 3 channels, NCHW output) from texel operands */
  check_conv((RefConv){ .batch = 2, .in_h = 7, .in_w = 9, .in_c = 8, .out_c = 3, .kh = 3, .kw = 3,
                        .stride = 1, .pad = 1, .out_nchw = true }, 0);
  /* long K, odd kernel/stride mix, accumulate */
  check_conv((RefConv){ .batch = 2, .in_h = 7, .in_w = 6, .in_c = 130, .out_c = 65, .kh = 3, .kw = 2,
                        .stride = 2, .pad = 1, .accumulate = true }, 12);
  if (big) {
    /* images far above a 64 KiB binding: row bands */
    check_conv((RefConv){ .batch = 2, .in_h = 40, .in_w = 36, .in_c = 32, .out_c = 40, .kh = 3, .kw = 3,
                          .stride = 1, .pad = 1, .accumulate = true }, 4);
    check_conv((RefConv){ .batch = 1, .in_h = 20, .in_w = 18, .in_c = 32, .out_c = 32, .kh = 3, .kw = 3,
                          .stride = 1, .pad = 1, .upsample = true }, 0);
    /* NCHW output of a small image from a big NHWC input: per-image windows */
    check_conv((RefConv){ .batch = 2, .in_h = 30, .in_w = 30, .in_c = 16, .out_c = 3, .kh = 3, .kw = 3,
                          .stride = 1, .pad = 1, .out_nchw = true }, 0);
    /* bands with NCHW operands (the VAE's conv_out; an NCHW latent input) */
    check_conv((RefConv){ .batch = 2, .in_h = 40, .in_w = 36, .in_c = 16, .out_c = 3, .kh = 3, .kw = 3,
                          .stride = 1, .pad = 1, .out_nchw = true }, 4);
    check_conv((RefConv){ .batch = 1, .in_h = 100, .in_w = 100, .in_c = 2, .out_c = 8, .kh = 2, .kw = 2,
                          .stride = 2, .pad = 0, .in_nchw = true }, 0);
  }
}

static void conv_cases_small(void) { conv_cases(false); }
static void conv_cases_big(void) { conv_cases(true); }
static void test_conv2d(void) { for_each_form(conv_cases_small); }

static void test_conv2d_bad_args(void)
{
  TBuf bx = upload(NULL, 64 * 4), bw = upload(NULL, 9 * 4 * 4 * 2);
  VkrtSeq *seq = test_seq_begin(ctx);
  VkrtConvParams p = { .batch = 1, .in_h = 4, .in_w = 4, .in_c = 4, .out_c = 4, .kernel_h = 3,
                       .kernel_w = 3, .stride = 1, .pad = 1 };
  /* y needs 256 bytes, give it 64 */
  vkrt_op_conv2d(seq, vkrt_tensor_sub(tens(bx), 0, 64), tens(bx), tens(bw), vkrt_tensor_none(), &p);
  g_assert_true(vkrt_seq_has_error(seq));
  GError *err = NULL;
  g_assert_false(vkrt_seq_submit(seq, &err));
  g_assert_nonnull(err);
  g_test_message("expected error: %s", err->message);
  g_clear_error(&err);
  vkrt_seq_free(seq);
  seq = test_seq_begin(ctx);
  p.kernel_h = 9;  /* larger than the padded input */
  vkrt_op_conv2d(seq, tens(bx), tens(bx), tens(bw), vkrt_tensor_none(), &p);
  g_assert_true(vkrt_seq_has_error(seq));
  vkrt_seq_free(seq);
  tfree(bx); tfree(bw);
}

/* --- fp32 GEMM and softmax (the VAE attention) ---------------------------------------------------- */

static void check_gemm(uint32_t M, uint32_t N, uint32_t K, uint64_t pad)
{
  float *x = test_rand_f32(rng, (size_t)M * K, -1, 1), *b = test_rand_f32(rng, (size_t)N * K, -1, 1);
  float *want = g_new(float, (size_t)M * N), *got = g_new(float, (size_t)M * N);
  ref_gemm_f32(want, x, b, M, N, K);
  TBuf bx = upload_at(x, (size_t)M * K * 4, pad), bb = upload(b, (size_t)N * K * 4), by = upload_at(NULL, (size_t)M * N * 4, 8);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_gemm_f32(seq, tens(by), tens(bx), tens(bb), M, N, K);
  test_seq_run_free(seq);
  download(by, got);
  char *what = g_strdup_printf("gemm_f32 %ux%ux%u pad %" G_GUINT64_FORMAT " (%s)", M, N, K, pad, form_name());
  expect_close(what, got, want, (size_t)M * N, 1e-5);
  g_free(what);
  tfree(bx); tfree(bb); tfree(by);
  g_free(x); g_free(b); g_free(want); g_free(got);
}

static void check_softmax(uint32_t rows, uint32_t n, float scale)
{
  float *x = test_rand_f32(rng, (size_t)rows * n, -30, 30), *want = g_memdup2(x, (size_t)rows * n * 4);
  float *got = g_new(float, (size_t)rows * n);
  ref_softmax(want, rows, n, scale);
  TBuf bx = upload_at(x, (size_t)rows * n * 4, 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_softmax(seq, tens(bx), rows, n, scale);
  test_seq_run_free(seq);
  download(bx, got);
  expect_close("softmax", got, want, (size_t)rows * n, 1e-5);
  tfree(bx);
  g_free(x); g_free(want); g_free(got);
}

static void check_transpose(uint32_t rows, uint32_t cols)
{
  size_t n = (size_t)rows * cols;
  float *x = test_rand_f32(rng, n, -1, 1), *want = g_new(float, n), *got = g_new(float, n);
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t c = 0; c < cols; c++)
      want[(size_t)c * rows + r] = x[(size_t)r * cols + c];
  TBuf bx = upload_at(x, n * 4, 4), by = upload(NULL, n * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_transpose(seq, tens(by), tens(bx), rows, cols);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("transpose", got, want, n, 1e-7);
  tfree(bx); tfree(by);
  g_free(x); g_free(want); g_free(got);
}

static void gemm_cases(void)
{
  check_gemm(70, 65, 33, 0);
  check_gemm(64, 512, 132, 0);   /* K % 4 == 0: texel operands on the CPU form */
  check_gemm(40, 100, 64, 4);    /* unaligned x: storage-buffer operands */
  check_gemm(1, 3, 600, 0);
}

static void test_gemm_softmax(void)
{
  for_each_form(gemm_cases);
  check_transpose(37, 70);
  check_softmax(5, 1000, 0.125f);
  check_softmax(64, 64, 1.0f / 8.0f);
}

/* --- depthwise ------------------------------------------------------------------------------- */

static void check_dwconv(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, uint32_t k, uint32_t pad)
{
  uint32_t ho = h + 2 * pad - k + 1, wo = w + 2 * pad - k + 1;
  size_t nx = (size_t)batch * h * w * c, ny = (size_t)batch * ho * wo * c;
  float *x = test_rand_f32(rng, nx, -1, 1), *want = g_new(float, ny), *got = g_new(float, ny);
  uint16_t *wt = test_rand_bf16(rng, (size_t)c * k * k, -0.5, 0.5), *bias = test_rand_bf16(rng, c, -1, 1);
  uint16_t *wr = g_new(uint16_t, (size_t)c * k * k);
  vkrt_dwconv_weight_reorder(wr, wt, c, k);
  ref_dwconv2d(want, x, wt, bias, batch, h, w, c, k, pad);
  TBuf bx = upload(x, nx * 4), by = upload_at(NULL, ny * 4, 4), bw = upload(wr, (size_t)c * k * k * 2),
       bb = upload_at(bias, c * 2, 2);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_dwconv2d(seq, tens(by), tens(bx), tens(bw), tens(bb), batch, h, w, c, k, pad);
  test_seq_run_free(seq);
  download(by, got);
  char *what = g_strdup_printf("dwconv B%u %ux%ux%u k%u p%u", batch, h, w, c, k, pad);
  expect_close(what, got, want, ny, 1e-4);
  g_free(what);
  tfree(bx); tfree(by); tfree(bw); tfree(bb);
  g_free(x); g_free(want); g_free(got); g_free(wt); g_free(wr); g_free(bias);
}

static void test_dwconv(void)
{
  /* both forms on any device: the texel form (VEC4) takes channels in multiples of 8 */
  static const char *const forms[] = { "vec", "scalar" };
  for (size_t i = 0; i < G_N_ELEMENTS(forms); i++) {
    g_setenv("JANUSFLOW_DWCONV_KERNEL", forms[i], TRUE);
    check_dwconv(3, 9, 7, 37, 7, 3);    /* 37 channels: the scalar form either way */
    check_dwconv(1, 4, 4, 64, 7, 3);    /* smaller than the kernel: most taps in the padding */
    check_dwconv(2, 6, 5, 3, 3, 1);
    check_dwconv(3, 9, 7, 40, 7, 3);
    check_dwconv(2, 13, 11, 16, 3, 1);  /* rows of 11: a partial block of 8 pixels */
    check_dwconv(1, 5, 19, 8, 5, 2);
    check_dwconv(1, 9, 10, 24, 3, 0);   /* no padding: 7 x 8 out */
  }
  g_unsetenv("JANUSFLOW_DWCONV_KERNEL");
}

/* --- norms ----------------------------------------------------------------------------------- */

/* GroupNorm has a workgroup (GPU) and a 4-channel texel (CPU) form: run both. */
static const char *gn_form_name(void)
{
  const char *e = g_getenv("JANUSFLOW_GN_KERNEL");
  return e ? e : "default";
}

/* pad: bytes before x (and y); the CPU form needs 16-byte offsets and falls back otherwise */
static void check_groupnorm_at(uint32_t batch, uint32_t hw, uint32_t c, uint32_t groups, double offset,
                               bool silu, bool in_place, uint64_t pad)
{
  size_t n = (size_t)batch * hw * c;
  float *x = test_rand_f32(rng, n, offset - 3, offset + 3), *want = g_new(float, n), *got = g_new(float, n);
  uint16_t *gm = test_rand_bf16(rng, c, -2, 2), *bt = test_rand_bf16(rng, c, -1, 1);
  ref_groupnorm(want, x, gm, bt, batch, hw, c, groups, 1e-6f, silu);
  TBuf bx = upload_at(x, n * 4, pad), bg = upload(gm, c * 2), bb = upload(bt, c * 2);
  TBuf by = in_place ? bx : upload_at(NULL, n * 4, pad);
  TBuf sc = upload(NULL, vkrt_op_groupnorm_scratch_bytes(ctx, batch, hw, c, groups));
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_groupnorm(seq, tens(by), tens(bx), tens(bg), tens(bb), tens(sc), batch, hw, c, groups, 1e-6f, silu);
  test_seq_run_free(seq);
  download(by, got);
  char *what = g_strdup_printf("groupnorm B%u hw%u c%u g%u offset %g silu%d in_place%d pad%" G_GUINT64_FORMAT
                               " (%s)", batch, hw, c, groups, offset, silu, in_place, pad, gn_form_name());
  expect_close(what, got, want, n, 1e-4);
  g_free(what);
  if (!in_place)
    tfree(by);
  tfree(bx); tfree(bg); tfree(bb); tfree(sc);
  g_free(x); g_free(want); g_free(got); g_free(gm); g_free(bt);
}

static void check_groupnorm(uint32_t batch, uint32_t hw, uint32_t c, uint32_t groups, double offset,
                            bool silu, bool in_place)
{
  static const char *const forms[] = { "vec", "wg" };
  for (int i = 0; i < 2; i++) {
    g_setenv("JANUSFLOW_GN_KERNEL", forms[i], TRUE);
    check_groupnorm_at(batch, hw, c, groups, offset, silu, in_place, 0);
    check_groupnorm_at(batch, hw, c, groups, offset, silu, in_place, 4);
  }
  g_unsetenv("JANUSFLOW_GN_KERNEL");
}

static void test_groupnorm(void)
{
  check_groupnorm(2, 300, 64, 8, 0.0, false, false);
  check_groupnorm(1, 4097, 32, 32, 100.0, true, false);  /* big mean: needs a stable variance */
  check_groupnorm(3, 17, 12, 4, 1.0, true, true);
  check_groupnorm(2, 129, 20, 5, -2.0, true, true);      /* 4 channels per group, a 1-pixel last slab */
  check_groupnorm(1, 1000, 8, 4, 30.0, false, false);    /* cpg 2: groups inside one texel */
  check_groupnorm(1, 7, 6, 3, 0.0, true, false);         /* c % 4 != 0: the CPU form falls back */
}

static void check_grn(uint32_t batch, uint32_t hw, uint32_t c)
{
  size_t n = (size_t)batch * hw * c;
  float *x = test_rand_f32(rng, n, -2, 2), *want = g_memdup2(x, n * 4), *got = g_new(float, n);
  uint16_t *gm = test_rand_bf16(rng, c, -1, 1), *bt = test_rand_bf16(rng, c, -1, 1);
  ref_grn(want, gm, bt, batch, hw, c);
  TBuf bx = upload_at(x, n * 4, 8), bg = upload_at(gm, c * 2, 2), bb = upload(bt, c * 2);
  TBuf sc = upload(NULL, vkrt_op_grn_scratch_bytes(batch, c));
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_grn(seq, tens(bx), tens(bg), tens(bb), tens(sc), batch, hw, c);
  test_seq_run_free(seq);
  download(bx, got);
  char *what = g_strdup_printf("grn B%u hw%u c%u", batch, hw, c);
  expect_close(what, got, want, n, 1e-4);
  g_free(what);
  tfree(bx); tfree(bg); tfree(bb); tfree(sc);
  g_free(x); g_free(want); g_free(got); g_free(gm); g_free(bt);
}

static void test_grn(void)
{
  check_grn(3, 17, 100);
  check_grn(1, 576, 300);
}

/* --- element-wise ---------------------------------------------------------------------------- */

static void check_silu(uint64_t n)
{
  float *x = test_rand_f32(rng, n, -8, 8), *want = g_new(float, n), *got = g_new(float, n);
  ref_silu(want, x, n);
  TBuf bx = upload_at(x, n * 4, 4), by = upload(NULL, n * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_silu(seq, tens(by), tens(bx), n);
  vkrt_op_scale_shift(seq, tens(bx), tens(bx), n, 0.5f, -2.0f);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("silu", got, want, n, 1e-5);
  download(bx, got);
  for (uint64_t i = 0; i < n; i++)
    want[i] = x[i] * 0.5f - 2.0f;
  expect_close("scale_shift", got, want, n, 1e-6);
  tfree(bx); tfree(by);
  g_free(x); g_free(want); g_free(got);
}

static void check_film(uint32_t batch, uint32_t hw, uint32_t c, uint32_t mb)
{
  size_t n = (size_t)batch * hw * c;
  float *x = test_rand_f32(rng, n, -2, 2), *m = test_rand_f32(rng, (size_t)mb * 2 * c, -1, 1);
  float *want = g_memdup2(x, n * 4), *got = g_new(float, n);
  ref_film(want, m, batch, hw, c, mb);
  TBuf bx = upload(x, n * 4), bm = upload_at(m, (size_t)mb * 2 * c * 4, 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_film(seq, tens(bx), tens(bm), batch, hw, c, mb);
  test_seq_run_free(seq);
  download(bx, got);
  expect_close("film", got, want, n, 1e-6);
  tfree(bx); tfree(bm);
  g_free(x); g_free(m); g_free(want); g_free(got);
}

static void check_upsample(uint32_t batch, uint32_t h, uint32_t w, uint32_t c)
{
  size_t nx = (size_t)batch * h * w * c, ny = nx * 4;
  float *x = test_rand_f32(rng, nx, -1, 1), *want = g_new(float, ny), *got = g_new(float, ny);
  ref_upsample2x(want, x, batch, h, w, c);
  TBuf bx = upload_at(x, nx * 4, 4), by = upload(NULL, ny * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_upsample2x(seq, tens(by), tens(bx), batch, h, w, c);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("upsample2x", got, want, ny, 1e-7);
  tfree(bx); tfree(by);
  g_free(x); g_free(want); g_free(got);
}

static void check_pixel_shuffle(uint32_t batch, uint32_t h, uint32_t w, uint32_t c, uint32_t r)
{
  size_t n = (size_t)batch * h * w * c * r * r;
  float *x = test_rand_f32(rng, n, -1, 1), *want = g_new(float, n), *got = g_new(float, n);
  ref_pixel_shuffle(want, x, batch, h, w, c, r);
  TBuf bx = upload(x, n * 4), by = upload_at(NULL, n * 4, 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_pixel_shuffle(seq, tens(by), tens(bx), batch, h, w, c, r);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("pixel_shuffle", got, want, n, 1e-7);
  ref_pixel_shuffle_nhwc(want, x, batch, h, w, c, r);
  seq = test_seq_begin(ctx);
  vkrt_op_pixel_shuffle_nhwc(seq, tens(by), tens(bx), batch, h, w, c, r);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("pixel_shuffle_nhwc", got, want, n, 1e-7);
  tfree(bx); tfree(by);
  g_free(x); g_free(want); g_free(got);
}

static void check_concat(uint32_t batch, uint32_t hw, uint32_t ca, uint32_t cb, uint32_t bb_)
{
  size_t na = (size_t)batch * hw * ca, nb = (size_t)bb_ * hw * cb, ny = (size_t)batch * hw * (ca + cb);
  float *a = test_rand_f32(rng, na, -1, 1), *b = test_rand_f32(rng, nb, -1, 1);
  float *want = g_new(float, ny), *got = g_new(float, ny);
  ref_concat(want, a, b, batch, hw, ca, cb, bb_);
  TBuf ba = upload(a, na * 4), bbuf = upload_at(b, nb * 4, 4), by = upload(NULL, ny * 4);
  VkrtSeq *seq = test_seq_begin(ctx);
  vkrt_op_concat(seq, tens(by), tens(ba), tens(bbuf), batch, hw, ca, cb, bb_);
  test_seq_run_free(seq);
  download(by, got);
  expect_close("concat", got, want, ny, 1e-7);
  tfree(ba); tfree(bbuf); tfree(by);
  g_free(a); g_free(b); g_free(want); g_free(got);
}

static void test_eltwise(void)
{
  check_silu(1000);
  check_film(4, 9, 33, 2);
  check_upsample(2, 5, 3, 7);
  check_pixel_shuffle(3, 4, 5, 4, 2);
  check_pixel_shuffle(1, 3, 2, 2, 3);
  check_concat(4, 10, 6, 5, 2);
}

/* cfg, dt and t come from a small buffer (at an unaligned offset), so a recorded step replays
 * with new values: the second run replays the same recording after rewriting them. With
 * `outputs` the op also writes x0, v and z before the step; with rgb_batch > 0 (per = 4 * h * w)
 * the preview of the first rgb_batch images' x0, which must equal ref_latent_rgb's (opaque). */
static void check_cfg(uint32_t n, uint32_t per, bool outputs, uint32_t rgb_batch, uint32_t h, uint32_t w)
{
  size_t t = (size_t)n * per, px = (size_t)rgb_batch * h * w;
  float *z = test_rand_f32(rng, t, -2, 2), *v = test_rand_f32(rng, 2 * t, -2, 2);
  float *zw = g_memdup2(z, t * 4), *zprev = g_new(float, t), *x0w = g_new(float, t), *vw = g_new(float, t);
  float *got = g_new(float, t);
  uint8_t *rgb_want = g_new0(uint8_t, px * 4 + 4), *rgb_got = g_new0(uint8_t, px * 4 + 4);
  float prm[2][3] = { { 2.5f, 1.0f / 3.0f, 1.0f / 3.0f },
                      { (float)g_rand_double_range(rng, 1, 8), (float)g_rand_double_range(rng, 0.01, 0.5),
                        (float)g_rand_double_range(rng, 0, 1) } };
  TBuf bz = upload_at(z, t * 4, 4), bv = upload(v, 2 * t * 4), bx0 = upload(NULL, t * 4), bvo = upload_at(NULL, t * 4, 8);
  TBuf bzp = upload_at(NULL, t * 4, 12), bo = upload_at(rgb_got, px * 4 + 4, 4);  /* zeros */
  TBuf bp = upload_at(prm[0], sizeof prm[0], 12);
  GError *err = NULL;
  VkrtSeq *seq = test_seq_begin(ctx);
  VkrtCfgEulerOut co = { .rgb_batch = rgb_batch, .hw = h * w, .factors = vkrt_sdxl_rgb_factors,
                         .bias = vkrt_sdxl_rgb_bias };
  if (outputs) {
    co.x0 = tens(bx0);
    co.v_out = tens(bvo);
    co.z_prev = tens(bzp);
  }
  if (rgb_batch)
    co.rgba = tens(bo);
  vkrt_op_cfg_euler(seq, tens(bz), tens(bv), tens(bp), n, per, &co);
  memcpy(zprev, z, t * 4);   /* then the device's z after each run */
  for (int run = 0; run < 2; run++) {
    ref_cfg_euler(zw, x0w, vw, v, n, per, prm[run][0], prm[run][1], prm[run][2]);
    if (run == 0) {
      g_assert_true(vkrt_seq_submit(seq, &err));
    } else {
      g_assert_true(vkrt_buffer_write(bp.buf, bp.pad, prm[1], sizeof prm[1], &err));
      g_assert_true(vkrt_seq_replay(seq, &err));
    }
    g_assert_no_error(err);
    download(bz, got);
    expect_close(run ? "cfg_euler z (replay)" : "cfg_euler z", got, zw, t, 1e-6);
    float *z_now = g_memdup2(got, t * 4);
    if (outputs) {
      download(bx0, got);
      expect_close(run ? "cfg_euler x0 (replay)" : "cfg_euler x0", got, x0w, t, 1e-6);
      download(bvo, got);
      expect_close(run ? "cfg_euler v (replay)" : "cfg_euler v", got, vw, t, 1e-6);
      download(bzp, got);
      expect_close(run ? "cfg_euler z_prev (replay)" : "cfg_euler z_prev", got, zprev, t, 1e-12);  /* a copy */
    }
    memcpy(zprev, z_now, t * 4);
    g_free(z_now);
    if (rgb_batch) {
      ref_latent_rgb(rgb_want, x0w, rgb_batch, h, w, vkrt_sdxl_rgb_factors, vkrt_sdxl_rgb_bias);
      download(bo, rgb_got);
      int maxd = 0;
      for (size_t i = 0; i < px * 4; i++)
        maxd = MAX(maxd, abs((int)rgb_got[i] - (int)rgb_want[i]));
      g_assert_cmpint(maxd, <=, 1);   /* fp32 vs double at a .5 rounding boundary */
      for (size_t i = 0; i < px; i++)
        g_assert_cmpint(rgb_got[i * 4 + 3], ==, 255);
      /* the word after the previewed images stays untouched */
      g_assert_cmpint(rgb_got[px * 4] | rgb_got[px * 4 + 1] | rgb_got[px * 4 + 2] | rgb_got[px * 4 + 3], ==, 0);
    }
  }
  vkrt_seq_free(seq);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  tfree(bz); tfree(bv); tfree(bx0); tfree(bvo); tfree(bzp); tfree(bo); tfree(bp);
  g_free(z); g_free(v); g_free(zw); g_free(zprev); g_free(x0w); g_free(vw); g_free(got);
  g_free(rgb_want); g_free(rgb_got);
}

static void test_cfg_euler(void)
{
  check_cfg(2, 4 * 8 * 8, true, 0, 0, 0);
  check_cfg(3, 4 * 5 * 7, false, 0, 0, 0);
  check_cfg(3, 4 * 5 * 7, true, 1, 5, 7);   /* what a step of gen_run records */
  check_cfg(2, 4 * 6 * 3, false, 2, 6, 3);
  check_cfg(1, 4 * 33 * 31, true, 1, 33, 31);
}

/* --- the same on 64 KiB bindings --------------------------------------------------------------- */

static void test_small_bindings(void)
{
  VkrtContext *saved = ctx;
  ctx = test_context_new_max_binding("65536");
  g_assert_cmpuint(vkrt_max_binding(ctx, false), <=, 65536);
  for_each_form(conv_cases_big);
  check_groupnorm(1, 48 * 40, 64, 8, 5.0, true, false);   /* 480 KiB: 8+ windows */
  check_groupnorm(2, 40 * 40, 32, 8, 0.0, false, true);
  check_silu(50000);
  check_film(3, 30 * 30, 24, 1);
  check_upsample(2, 17, 15, 24);
  check_grn(3, 64, 96);
  check_dwconv(4, 12, 12, 48, 7, 3);
  check_pixel_shuffle(4, 24, 24, 4, 2);
  check_concat(4, 24 * 24, 16, 8, 2);
  check_softmax(40, 1000, 0.5f);    /* 160 KB: several windows of rows */
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
  vkrt_context_free(ctx);
  ctx = saved;
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  rng = g_rand_new_with_seed(1234);
  ctx = test_context_new(false);
  if (!ctx)
    return 77;
  g_test_add_func("/ops-gen/conv2d", test_conv2d);
  g_test_add_func("/ops-gen/conv2d-bad-args", test_conv2d_bad_args);
  g_test_add_func("/ops-gen/gemm-softmax", test_gemm_softmax);
  g_test_add_func("/ops-gen/dwconv", test_dwconv);
  g_test_add_func("/ops-gen/groupnorm", test_groupnorm);
  g_test_add_func("/ops-gen/grn", test_grn);
  g_test_add_func("/ops-gen/eltwise", test_eltwise);
  g_test_add_func("/ops-gen/cfg-euler", test_cfg_euler);
  g_test_add_func("/ops-gen/small-bindings", test_small_bindings);
  int r = g_test_run();
  vkrt_context_free(ctx);
  g_rand_free(rng);
  return r;
}
