/* vkrt_op_conv2d and vkrt_op_gemm_f32: implicit-GEMM convolution (shaders/conv2d.comp) with
 * binding windows: whole images per dispatch when they fit, else bands of output rows of one
 * image together with the input rows they read; weights larger than a binding go in groups of
 * output channels.
 *
 * Two kernel forms: a shared-memory tiled one for GPUs, and a register-blocked, barrier-free one
 * fed by texel buffers for CPU devices (lavapipe), where the tiled form runs 10-20x slower
 * (spec/PLATFORM.md §2). JANUSFLOW_CONV_KERNEL=tiled|reg overrides the choice (tests run both). */
#include "ops_gen.h"
#include "op_util.h"
#include <string.h>

typedef struct {
  uint32_t M, p0, N, K;
  uint32_t hi, wi, ci, ho, wo;
  uint32_t kw, stride, pad;
  int32_t x_add, y_add, w_add, b_add;
  uint32_t flags;
  uint32_t n_base, n_end;
} ConvPush;

enum { SH_ACC = 1, SH_UP = 2, SH_IN_NCHW = 4, SH_OUT_NCHW = 8, SH_BIAS = 16 };

/* tiled form: 64 pixels x 64 channels per workgroup; register form: 16 pixels x 16 channels per
 * invocation, 64 invocations per workgroup numbered channel tile first */
#define TILED_M 64u
#define TILED_N 64u
#define REG_M 16u
#define REG_N 16u
/* pixels one dispatch may cover: workgroup counts are limited to 65535 per dimension */
#define MAX_M (65535u * REG_M)

typedef enum { FORM_TILED, FORM_REG, FORM_REG_TEX } ConvForm;

uint32_t vkrt_conv_out_size(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad, bool up)
{
  uint64_t eff = (uint64_t)in * (up ? 2 : 1) + 2ull * pad;
  if (stride == 0 || kernel == 0 || eff < kernel)
    return 0;
  return (uint32_t)((eff - kernel) / stride + 1);
}

void vkrt_conv_weight_reorder(uint16_t *dst, const uint16_t *src, uint32_t out_c, uint32_t in_c,
                              uint32_t kh, uint32_t kw)
{
  for (uint32_t o = 0; o < out_c; o++)
    for (uint32_t i = 0; i < in_c; i++)
      for (uint32_t y = 0; y < kh; y++)
        for (uint32_t x = 0; x < kw; x++)
          dst[(((uint64_t)o * kh + y) * kw + x) * in_c + i] = src[(((uint64_t)o * in_c + i) * kh + y) * kw + x];
}

static bool use_reg_form(VkrtContext *ctx)
{
  return op_cpu_form(ctx, "JANUSFLOW_CONV_KERNEL", "reg", "tiled");
}

/* A binding window of the form's kind for the x or w operand. */
static gboolean window_operand(VkrtSeq *seq, ConvForm form, VkrtTensor t, uint64_t b0, uint64_t b1, uint32_t esize,
                               OpWin *w)
{
  return form == FORM_REG_TEX ? op_win_texel(seq, t, b0, b1, w) : op_win(seq, t, b0, b1, esize, w);
}

static uint64_t plan_capacity(VkrtSeq *seq)
{
  VkrtContext *ctx = vkrt_seq_context(seq);
  uint64_t s = op_window_bytes(seq, false), tmax = vkrt_max_binding(ctx, true), ta = vkrt_binding_align(ctx, true);
  uint64_t t = tmax > ta + 16 ? tmax - ta - 16 : 0;
  return MIN(s, t);
}

typedef struct {
  VkrtSeq *seq;
  const VkrtConvParams *p;
  ConvPush push;
  VkrtTensor y, x, wt;
  OpWin bias;
  ConvForm form;
  const char *shader;
  uint32_t wsize;          /* bytes per weight element (2 bf16, 4 fp32) */
  uint32_t heff, n_chunk;
} ConvJob;

/* x bytes [xs0, xs1) and y bytes [ys0, ys1) hold what output pixels p0 .. p0 + M - 1 need. */
static gboolean conv_dispatch(ConvJob *j, uint64_t xs0, uint64_t xs1, uint64_t ys0, uint64_t ys1, uint32_t p0,
                              uint32_t M)
{
  uint32_t N = j->push.N, K = j->push.K;
  OpWin xw, yw;
  if (!window_operand(j->seq, j->form, j->x, xs0, xs1, 4, &xw) || !op_win(j->seq, j->y, ys0, ys1, 4, &yw))
    return op_fail(j->seq, VKRT_ERROR_FAILED, "conv2d", "window planning failed");
  for (uint32_t n0 = 0; n0 < N; n0 += j->n_chunk) {
    uint32_t n1 = MIN(n0 + j->n_chunk, N);
    OpWin ww;
    if (!window_operand(j->seq, j->form, j->wt, (uint64_t)n0 * K * j->wsize, (uint64_t)n1 * K * j->wsize,
                        j->wsize, &ww))
      return op_fail(j->seq, VKRT_ERROR_FAILED, "conv2d", "window planning failed");
    ConvPush push = j->push;
    push.p0 = p0;
    push.M = M;
    push.x_add = xw.add;
    push.y_add = yw.add;
    push.w_add = ww.add;
    push.n_base = n0;
    push.n_end = n1;
    VkrtDispatch d = {
      .shader = j->shader,
      .n_bindings = 4,
      .bindings = { yw.bind, xw.bind, ww.bind, j->bias.bind },
      .push = &push,
      .push_size = sizeof push,
      .flops = 2ull * M * (n1 - n0) * K,
      .texel_mask = j->form == FORM_REG_TEX ? 0x6u : 0u,
    };
    if (j->form == FORM_TILED) {
      d.groups[0] = (M + TILED_M - 1) / TILED_M;
      d.groups[1] = (n1 - n0 + TILED_N - 1) / TILED_N;
    } else {
      uint64_t inv = (uint64_t)((n1 - n0 + REG_N - 1) / REG_N) * ((M + REG_M - 1) / REG_M);
      uint64_t wgs = (inv + 63) / 64;
      d.groups[0] = (uint32_t)MIN(wgs, 65535);
      d.groups[1] = (uint32_t)((wgs + d.groups[0] - 1) / d.groups[0]);
    }
    d.groups[2] = 1;
    vkrt_seq_dispatch(j->seq, &d);
  }
  return TRUE;
}

/* Input rows (stored coordinates) read by output rows [oy0, oy0 + rows). */
static void conv_in_rows(const ConvJob *j, uint32_t oy0, uint32_t rows, uint32_t *first, uint32_t *last)
{
  const VkrtConvParams *p = j->p;
  int64_t lo = (int64_t)oy0 * p->stride - p->pad;
  int64_t hi = (int64_t)(oy0 + rows - 1) * p->stride - p->pad + p->kernel_h - 1;
  if (lo < 0) lo = 0;
  if (hi > (int64_t)j->heff - 1) hi = (int64_t)j->heff - 1;
  if (hi < lo) hi = lo;  /* a band entirely in the padding still binds one row */
  bool up = p->flags & VKRT_CONV_UPSAMPLE2X;
  *first = (uint32_t)(up ? lo / 2 : lo);
  *last = (uint32_t)(up ? hi / 2 : hi);
}

/* Byte spans of x and y that a band touches: rows [first, last] of x / [oy, oy + rows) of y of
 * image b; in NCHW that is from the first channel's first row to the last channel's last row. */
static void conv_span_x(const ConvJob *j, uint32_t b, uint32_t first, uint32_t last, uint64_t *s0, uint64_t *s1)
{
  const VkrtConvParams *p = j->p;
  uint64_t W = p->in_w, H = p->in_h, C = p->in_c;
  if (p->flags & VKRT_CONV_IN_NCHW) {
    *s0 = (((uint64_t)b * C) * H + first) * W * 4;
    *s1 = (((uint64_t)b * C + C - 1) * H + last + 1) * W * 4;
  } else {
    *s0 = ((uint64_t)b * H + first) * W * C * 4;
    *s1 = ((uint64_t)b * H + last + 1) * W * C * 4;
  }
}

static void conv_span_y(const ConvJob *j, uint32_t b, uint32_t ho, uint32_t wo, uint32_t oy, uint32_t rows,
                        uint64_t *s0, uint64_t *s1)
{
  const VkrtConvParams *p = j->p;
  uint64_t N = p->out_c;
  if (p->flags & VKRT_CONV_OUT_NCHW) {
    *s0 = (((uint64_t)b * N) * ho + oy) * wo * 4;
    *s1 = (((uint64_t)b * N + N - 1) * ho + oy + rows) * wo * 4;
  } else {
    *s0 = ((uint64_t)b * ho + oy) * wo * N * 4;
    *s1 = ((uint64_t)b * ho + oy + rows) * wo * N * 4;
  }
}

static gboolean conv_bands(ConvJob *j, uint32_t ho, uint32_t wo, uint64_t cap)
{
  const VkrtConvParams *p = j->p;
  for (uint32_t b = 0; b < p->batch; b++) {
    for (uint32_t oy = 0; oy < ho;) {
      uint32_t r = MIN(ho - oy, MAX_M / wo);
      uint32_t first = 0, last = 0;
      uint64_t xs0 = 0, xs1 = 0, ys0 = 0, ys1 = 0;
      for (; r > 0; r--) {
        conv_in_rows(j, oy, r, &first, &last);
        conv_span_x(j, b, first, last, &xs0, &xs1);
        conv_span_y(j, b, ho, wo, oy, r, &ys0, &ys1);
        if (xs1 - xs0 <= cap && ys1 - ys0 <= cap)
          break;
      }
      if (r == 0)
        return op_fail(j->seq, VKRT_ERROR_FAILED, "conv2d", "one output row and the input rows it reads do not fit a %"
                       G_GUINT64_FORMAT "-byte binding", cap);
      if (!conv_dispatch(j, xs0, xs1, ys0, ys1, b * ho * wo + oy * wo, r * wo))
        return FALSE;
      oy += r;
    }
  }
  return TRUE;
}

void vkrt_op_conv2d(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                    const VkrtConvParams *p)
{
  static const char op[] = "conv2d";
  if (!p || !p->batch || !p->in_c || !p->out_c || !p->kernel_h || !p->kernel_w || !p->stride) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "batch, channels, kernel and stride must be positive");
    return;
  }
  bool up = p->flags & VKRT_CONV_UPSAMPLE2X;
  uint32_t ho = vkrt_conv_out_size(p->in_h, p->kernel_h, p->stride, p->pad, up);
  uint32_t wo = vkrt_conv_out_size(p->in_w, p->kernel_w, p->stride, p->pad, up);
  if (!ho || !wo) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "the kernel is larger than the padded input");
    return;
  }
  uint64_t K = (uint64_t)p->kernel_h * p->kernel_w * p->in_c;
  uint64_t x_img = (uint64_t)p->in_h * p->in_w * p->in_c, y_img = (uint64_t)ho * wo * p->out_c;
  if (x_img * p->batch > OP_WIN_MAX_ELEMS || y_img * p->batch > OP_WIN_MAX_ELEMS || K * p->out_c > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  ConvJob j = { .seq = seq, .p = p, .y = y, .x = x, .wt = w, .wsize = 2, .heff = up ? 2 * p->in_h : p->in_h };
  if (!op_check_elems(seq, op, "y", y, y_img * p->batch * 4, 4) ||
      !op_check_elems(seq, op, "x", x, x_img * p->batch * 4, 4) ||
      !op_check_elems(seq, op, "w", w, K * p->out_c * 2, 2))
    return;
  if (!use_reg_form(vkrt_seq_context(seq))) {
    j.form = FORM_TILED;
    j.shader = "gen_conv2d";
  } else if (!(p->flags & VKRT_CONV_IN_NCHW) && p->in_c % 8 == 0 && x.offset % 16 == 0 && w.offset % 16 == 0) {
    j.form = FORM_REG_TEX;
    j.shader = "gen_conv2d_reg_tex";
  } else {
    j.form = FORM_REG;
    j.shader = "gen_conv2d_reg";
  }
  uint64_t cap = plan_capacity(seq);
  /* output channels per dispatch: the weight rows must fit a window */
  uint64_t nc = cap / (K * 2);
  if (nc >= p->out_c)
    nc = p->out_c;
  else if (nc >= TILED_N)
    nc = nc / TILED_N * TILED_N;
  if (nc == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one output channel's weights (%" G_GUINT64_FORMAT " bytes) do not fit a binding", K * 2);
    return;
  }
  j.n_chunk = (uint32_t)nc;
  uint32_t flags = 0;
  if (bias.buf) {
    if (!op_win_whole(seq, op, "bias", bias, (uint64_t)p->out_c * 2, 2, &j.bias))
      return;
    flags |= SH_BIAS;
  } else if (!op_win(seq, w, 0, 4, 2, &j.bias)) {  /* any valid binding: not read */
    op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
    return;
  }
  if (p->flags & VKRT_CONV_ACCUMULATE) flags |= SH_ACC;
  if (up) flags |= SH_UP;
  if (p->flags & VKRT_CONV_IN_NCHW) flags |= SH_IN_NCHW;
  if (p->flags & VKRT_CONV_OUT_NCHW) flags |= SH_OUT_NCHW;
  j.push = (ConvPush){
    .N = p->out_c, .K = (uint32_t)K,
    .hi = p->in_h, .wi = p->in_w, .ci = p->in_c, .ho = ho, .wo = wo,
    .kw = p->kernel_w, .stride = p->stride, .pad = p->pad,
    .b_add = j.bias.add, .flags = flags,
  };

  /* whole images per dispatch when they fit, else bands of rows */
  uint64_t k = MIN(cap / (x_img * 4), cap / (y_img * 4));
  k = MIN(k, (uint64_t)p->batch);
  if ((uint64_t)k * ho * wo > MAX_M)
    k = MAX_M / ((uint64_t)ho * wo);
  if (k == 0) {
    conv_bands(&j, ho, wo, cap);
    return;
  }
  for (uint32_t b0 = 0; b0 < p->batch; b0 += (uint32_t)k) {
    uint32_t nb = (uint32_t)MIN(k, (uint64_t)p->batch - b0);
    if (!conv_dispatch(&j, b0 * x_img * 4, (b0 + nb) * x_img * 4, b0 * y_img * 4, (b0 + nb) * y_img * 4,
                       b0 * ho * wo, nb * ho * wo))
      return;
  }
}

void vkrt_op_gemm_f32(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor b, uint32_t M, uint32_t N, uint32_t K)
{
  static const char op[] = "gemm_f32";
  if (!M || !N || !K)
    return;
  if ((uint64_t)M * K > OP_WIN_MAX_ELEMS || (uint64_t)M * N > OP_WIN_MAX_ELEMS || (uint64_t)N * K > OP_WIN_MAX_ELEMS ||
      M > MAX_M) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes exceed the index or dispatch range");
    return;
  }
  uint64_t cap = plan_capacity(seq);
  if (!op_check_elems(seq, op, "y", y, (uint64_t)M * N * 4, 4) || !op_check_elems(seq, op, "x", x, (uint64_t)M * K * 4, 4) ||
      !op_check_elems(seq, op, "b", b, (uint64_t)N * K * 4, 4))
    return;
  if ((uint64_t)M * N * 4 > cap || (uint64_t)M * K * 4 > cap || (uint64_t)N * K * 4 > cap) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "an operand does not fit a %" G_GUINT64_FORMAT "-byte binding", cap);
    return;
  }
  /* a 1x1 convolution of a 1 x M image with K channels */
  VkrtConvParams cp = { .batch = 1, .in_h = 1, .in_w = M, .in_c = K, .out_c = N, .kernel_h = 1, .kernel_w = 1,
                        .stride = 1, .pad = 0 };
  ConvJob j = { .seq = seq, .p = &cp, .y = y, .x = x, .wt = b, .wsize = 4, .heff = 1, .n_chunk = N };
  if (!use_reg_form(vkrt_seq_context(seq))) {
    j.form = FORM_TILED;
    j.shader = "gen_gemm_f32";
  } else if (K % 4 == 0 && x.offset % 16 == 0 && b.offset % 16 == 0) {
    j.form = FORM_REG_TEX;
    j.shader = "gen_gemm_f32_reg_tex";
  } else {
    j.form = FORM_REG;
    j.shader = "gen_gemm_f32_reg";
  }
  if (!op_win(seq, y, 0, 4, 4, &j.bias)) {  /* any valid binding: not read */
    op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
    return;
  }
  j.push = (ConvPush){ .N = N, .K = K, .hi = 1, .wi = M, .ci = K, .ho = 1, .wo = M, .kw = 1, .stride = 1 };
  conv_dispatch(&j, 0, (uint64_t)M * K * 4, 0, (uint64_t)M * N * 4, 0, M);
}
