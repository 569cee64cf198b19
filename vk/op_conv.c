/* vkrt_op_conv2d: implicit-GEMM convolution (shaders/conv2d.comp) with binding windows: whole
 * images per dispatch when they fit, else bands of output rows of one image together with the
 * input rows they read (NHWC only). */
#include "ops_gen.h"
#include "op_gen_util.h"

typedef struct {
  uint32_t M, p0, N, K;
  uint32_t hi, wi, ci, ho, wo;
  uint32_t kw, stride, pad;
  int32_t x_add, y_add, w_add, b_add;
  uint32_t flags;
  uint32_t n_base, n_end;
} ConvPush;

enum { SH_ACC = 1, SH_UP = 2, SH_IN_NCHW = 4, SH_OUT_NCHW = 8, SH_BIAS = 16 };

#define TILE_M 64u
#define TILE_N 64u
/* pixels one dispatch may cover: workgroup counts are limited to 65535 per dimension */
#define MAX_M (65535u * TILE_M)

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

typedef struct {
  VkrtSeq *seq;
  const VkrtConvParams *p;
  ConvPush push;
  VkrtTensor y, x, wt;
  GenWin bias;
  uint32_t heff, n_chunk;
} ConvJob;

static void conv_dispatch(ConvJob *j, GenWin xw, GenWin yw, uint32_t p0, uint32_t M)
{
  uint32_t N = j->push.N, K = j->push.K;
  for (uint32_t n0 = 0; n0 < N; n0 += j->n_chunk) {
    uint32_t n1 = MIN(n0 + j->n_chunk, N);
    GenWin ww;
    if (!gen_window(j->seq, j->wt, (uint64_t)n0 * K * 2, (uint64_t)n1 * K * 2, 2, &ww)) {
      gen_fail(j->seq, "conv2d", "window planning failed");
      return;
    }
    ConvPush push = j->push;
    push.p0 = p0;
    push.M = M;
    push.x_add = xw.add;
    push.y_add = yw.add;
    push.w_add = ww.add;
    push.n_base = n0;
    push.n_end = n1;
    VkrtDispatch d = {
      .shader = "gen_conv2d",
      .n_bindings = 4,
      .bindings = { yw.bind, xw.bind, ww.bind, j->bias.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { (M + TILE_M - 1) / TILE_M, (n1 - n0 + TILE_N - 1) / TILE_N, 1 },
      .flops = 2ull * M * (n1 - n0) * K,
    };
    vkrt_seq_dispatch(j->seq, &d);
  }
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

static gboolean conv_bands(ConvJob *j, uint32_t ho, uint32_t wo)
{
  static const char op[] = "conv2d";
  const VkrtConvParams *p = j->p;
  uint64_t cap = gen_window_capacity(j->seq);
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
        return gen_fail(j->seq, op, "one output row and the input rows it reads do not fit a %" G_GUINT64_FORMAT
                        "-byte binding", cap);
      GenWin xw, yw;
      if (!gen_window(j->seq, j->x, xs0, xs1, 4, &xw) || !gen_window(j->seq, j->y, ys0, ys1, 4, &yw))
        return gen_fail(j->seq, op, "window planning failed");
      conv_dispatch(j, xw, yw, b * ho * wo + oy * wo, r * wo);
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
    gen_fail(seq, op, "batch, channels, kernel and stride must be positive");
    return;
  }
  bool up = p->flags & VKRT_CONV_UPSAMPLE2X;
  uint32_t ho = vkrt_conv_out_size(p->in_h, p->kernel_h, p->stride, p->pad, up);
  uint32_t wo = vkrt_conv_out_size(p->in_w, p->kernel_w, p->stride, p->pad, up);
  if (!ho || !wo) {
    gen_fail(seq, op, "the kernel is larger than the padded input");
    return;
  }
  uint64_t K = (uint64_t)p->kernel_h * p->kernel_w * p->in_c;
  uint64_t x_img = (uint64_t)p->in_h * p->in_w * p->in_c, y_img = (uint64_t)ho * wo * p->out_c;
  if (x_img * p->batch > GEN_MAX_ELEMS || y_img * p->batch > GEN_MAX_ELEMS || K * p->out_c > GEN_MAX_ELEMS) {
    gen_fail(seq, op, "tensors exceed the 32-bit index range");
    return;
  }
  ConvJob j = { .seq = seq, .p = p, .y = y, .x = x, .wt = w, .heff = up ? 2 * p->in_h : p->in_h };
  if (!gen_check(seq, op, "y", y, y_img * p->batch * 4, 4) ||
      !gen_check(seq, op, "x", x, x_img * p->batch * 4, 4) ||
      !gen_check(seq, op, "w", w, K * p->out_c * 2, 2))
    return;
  /* output channels per dispatch: the weight rows must fit a window (a multiple of the tile) */
  uint64_t nc = gen_window_capacity(seq) / (K * 2);
  if (nc >= p->out_c)
    nc = p->out_c;
  else if (nc >= TILE_N)
    nc = nc / TILE_N * TILE_N;
  if (nc == 0) {
    gen_fail(seq, op, "one output channel's weights (%" G_GUINT64_FORMAT " bytes) do not fit a binding", K * 2);
    return;
  }
  j.n_chunk = (uint32_t)nc;
  uint32_t flags = 0;
  if (bias.buf) {
    if (!gen_window_whole(seq, op, "bias", bias, (uint64_t)p->out_c * 2, 2, &j.bias))
      return;
    flags |= SH_BIAS;
  } else {
    /* any valid binding: the shader does not read it */
    if (!gen_window(seq, w, 0, 4, 2, &j.bias)) {
      gen_fail(seq, op, "window planning failed");
      return;
    }
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

  uint64_t sizes[2] = { x_img * 4, y_img * 4 };
  uint32_t k = gen_images_per_window(seq, p->batch, sizes, 2);
  if ((uint64_t)k * ho * wo > MAX_M)
    k = MAX_M / (ho * wo);
  if (k == 0) {
    conv_bands(&j, ho, wo);
    return;
  }
  for (uint32_t b0 = 0; b0 < p->batch; b0 += k) {
    uint32_t nb = MIN(k, p->batch - b0);
    GenWin xw, yw;
    if (!gen_window(seq, x, b0 * x_img * 4, (b0 + nb) * x_img * 4, 4, &xw) ||
        !gen_window(seq, y, b0 * y_img * 4, (b0 + nb) * y_img * 4, 4, &yw)) {
      gen_fail(seq, op, "window planning failed");
      return;
    }
    conv_dispatch(&j, xw, yw, b0 * ho * wo, nb * ho * wo);
  }
}

void vkrt_op_gemm_f32(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor b, uint32_t M, uint32_t N,
                      uint32_t K, uint32_t flags)
{
  static const char op[] = "gemm_f32";
  if (!M || !N || !K)
    return;
  if ((uint64_t)M * K > GEN_MAX_ELEMS || (uint64_t)M * N > GEN_MAX_ELEMS || (uint64_t)N * K > GEN_MAX_ELEMS ||
      M > MAX_M || N > 65535u * TILE_N) {
    gen_fail(seq, op, "sizes exceed the index or dispatch range");
    return;
  }
  GenWin yw, xw, bw;
  if (!gen_window_whole(seq, op, "y", y, (uint64_t)M * N * 4, 4, &yw) ||
      !gen_window_whole(seq, op, "x", x, (uint64_t)M * K * 4, 4, &xw) ||
      !gen_window_whole(seq, op, "b", b, (uint64_t)N * K * 4, 4, &bw))
    return;
  /* a 1x1 convolution of a 1 x M image with K channels */
  ConvPush push = {
    .M = M, .p0 = 0, .N = N, .K = K, .hi = 1, .wi = M, .ci = K, .ho = 1, .wo = M,
    .kw = 1, .stride = 1, .pad = 0, .x_add = xw.add, .y_add = yw.add, .w_add = bw.add, .b_add = 0,
    .flags = (flags & VKRT_GEMM_B_KN) ? 32u : 0u, .n_base = 0, .n_end = N,
  };
  VkrtDispatch d = {
    .shader = "gen_gemm_f32",
    .n_bindings = 4,
    .bindings = { yw.bind, xw.bind, bw.bind, bw.bind },
    .push = &push,
    .push_size = sizeof push,
    .groups = { (M + TILE_M - 1) / TILE_M, (N + TILE_N - 1) / TILE_N, 1 },
    .flops = 2ull * M * N * K,
  };
  vkrt_seq_dispatch(seq, &d);
}
