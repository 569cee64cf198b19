/* Element-wise generation ops (shaders/eltwise_gen.comp). Data movement and element-wise math
 * count no FLOPs (as in the reference bench). */
#include "ops_gen.h"
#include "op_util.h"

const float vkrt_sdxl_rgb_factors[4][3] = {
  { 0.3651f, 0.4232f, 0.4341f },
  { -0.2533f, -0.0042f, 0.1068f },
  { 0.1076f, 0.1111f, -0.0362f },
  { -0.3165f, -0.2492f, -0.2188f },
};
const float vkrt_sdxl_rgb_bias[3] = { 0.1084f, -0.0175f, -0.0011f };

static void dispatch2(VkrtSeq *seq, const char *shader, VkrtTensor b0, VkrtTensor b1, const void *push,
                      uint32_t push_size, uint64_t count)
{
  VkrtDispatch d = {
    .shader = shader,
    .n_bindings = 2,
    .bindings = { b0, b1 },
    .push = push,
    .push_size = push_size,
    .groups = { op_stride_groups(count), 1, 1 },
  };
  vkrt_seq_dispatch(seq, &d);
}

/* --- y = f(x), 1:1, any chunking ------------------------------------------------------------- */

typedef struct { uint32_t e0, count; float a, b; int32_t y_add, x_add; } UnaryPush;

static void unary(VkrtSeq *seq, const char *op, const char *shader, VkrtTensor y, VkrtTensor x,
                  uint64_t n, float a, float b)
{
  if (n == 0)
    return;
  if (n > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  if (!op_check_elems(seq, op, "y", y, n * 4, 4) || !op_check_elems(seq, op, "x", x, n * 4, 4))
    return;
  uint64_t chunk = op_window_bytes(seq, false) / 4;
  if (!chunk) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "bindings are too small");
    return;
  }
  for (uint64_t e0 = 0; e0 < n; e0 += chunk) {
    uint64_t e1 = MIN(e0 + chunk, n);
    OpWin yw, xw;
    if (!op_win(seq, y, e0 * 4, e1 * 4, 4, &yw) || !op_win(seq, x, e0 * 4, e1 * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    UnaryPush push = { (uint32_t)e0, (uint32_t)(e1 - e0), a, b, yw.add, xw.add };
    dispatch2(seq, shader, yw.bind, xw.bind, &push, sizeof push, e1 - e0);
  }
}

void vkrt_op_silu(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint64_t n)
{
  unary(seq, "silu", "gen_silu", y, x, n, 0.0f, 0.0f);
}

void vkrt_op_scale_shift(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint64_t n, float a, float b)
{
  unary(seq, "scale_shift", "gen_affine", y, x, n, a, b);
}

/* --- FiLM ------------------------------------------------------------------------------------ */

typedef struct { uint32_t e0, count, hw, c, mod_batch; int32_t x_add, m_add; } FilmPush;

void vkrt_op_film(VkrtSeq *seq, VkrtTensor x, VkrtTensor mod, uint32_t batch, uint32_t hw,
                  uint32_t c, uint32_t mod_batch)
{
  static const char op[] = "film";
  if (!batch || !hw || !c || !mod_batch) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive");
    return;
  }
  uint64_t n = (uint64_t)batch * hw * c;
  if (n > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  OpWin mw = { 0 };
  if (!op_check_elems(seq, op, "x", x, n * 4, 4) ||
      !op_win_whole(seq, op, "mod", mod, (uint64_t)mod_batch * 2 * c * 4, 4, &mw))
    return;
  uint64_t chunk = op_window_bytes(seq, false) / 4;
  for (uint64_t e0 = 0; e0 < n; e0 += chunk) {
    uint64_t e1 = MIN(e0 + chunk, n);
    OpWin xw;
    if (!op_win(seq, x, e0 * 4, e1 * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    FilmPush push = { (uint32_t)e0, (uint32_t)(e1 - e0), hw, c, mod_batch, xw.add, mw.add };
    dispatch2(seq, "gen_film", xw.bind, mw.bind, &push, sizeof push, e1 - e0);
  }
}

/* --- nearest 2x upsampling ------------------------------------------------------------------- */

typedef struct { uint32_t e0, count, h, w, c; int32_t y_add, x_add; } UpPush;

void vkrt_op_upsample2x(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                        uint32_t w, uint32_t c)
{
  static const char op[] = "upsample2x";
  if (!batch || !h || !w || !c) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive");
    return;
  }
  uint64_t n_out = (uint64_t)batch * 4 * h * w * c;
  if (n_out > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  if (!op_check_elems(seq, op, "y", y, n_out * 4, 4) || !op_check_elems(seq, op, "x", x, n_out / 4 * 4, 4))
    return;
  /* output row R (over all images) reads input row R / 2 */
  uint64_t out_row = 2ull * w * c * 4, in_row = (uint64_t)w * c * 4;
  uint64_t rows = 2ull * h * batch;
  uint64_t cap = op_window_bytes(seq, false);
  uint64_t k = cap / out_row, k_in = cap / in_row;
  /* k output rows starting anywhere read at most k / 2 + 1 input rows */
  k = k_in == 0 ? 0 : k_in == 1 ? MIN(k, 1) : MIN(k, 2 * (k_in - 1));
  if (k == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one row does not fit a binding");
    return;
  }
  for (uint64_t r0 = 0; r0 < rows; r0 += k) {
    uint64_t r1 = MIN(r0 + k, rows);
    OpWin yw, xw;
    if (!op_win(seq, y, r0 * out_row, r1 * out_row, 4, &yw) ||
        !op_win(seq, x, (r0 / 2) * in_row, ((r1 - 1) / 2 + 1) * in_row, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    uint64_t e0 = r0 * 2 * w * c, e1 = r1 * 2 * w * c;
    UpPush push = { (uint32_t)e0, (uint32_t)(e1 - e0), h, w, c, yw.add, xw.add };
    dispatch2(seq, "gen_upsample", yw.bind, xw.bind, &push, sizeof push, e1 - e0);
  }
}

/* --- PixelShuffle ---------------------------------------------------------------------------- */

typedef struct { uint32_t e0, count, h, w, c, r; int32_t y_add, x_add; uint32_t nhwc; } ShufPush;

static void pixel_shuffle(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h, uint32_t w,
                          uint32_t c_out, uint32_t r, bool nhwc)
{
  static const char op[] = "pixel_shuffle";
  if (!batch || !h || !w || !c_out || !r) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive");
    return;
  }
  uint64_t img = (uint64_t)h * w * c_out * r * r;
  if (img * batch > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  if (!op_check_elems(seq, op, "y", y, img * batch * 4, 4) || !op_check_elems(seq, op, "x", x, img * batch * 4, 4))
    return;
  uint64_t sizes[1] = { img * 4 };
  uint32_t per = op_images_per_window(seq, batch, sizes, 1);
  if (!per) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one image does not fit a binding");
    return;
  }
  for (uint32_t b0 = 0; b0 < batch; b0 += per) {
    uint32_t nb = MIN(per, batch - b0);
    OpWin yw, xw;
    if (!op_win(seq, y, b0 * img * 4, (b0 + nb) * img * 4, 4, &yw) ||
        !op_win(seq, x, b0 * img * 4, (b0 + nb) * img * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    ShufPush push = { (uint32_t)(b0 * img), (uint32_t)(nb * img), h, w, c_out, r, yw.add, xw.add, nhwc };
    dispatch2(seq, "gen_pixel_shuffle", yw.bind, xw.bind, &push, sizeof push, push.count);
  }
}

void vkrt_op_pixel_shuffle(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                           uint32_t w, uint32_t c_out, uint32_t r)
{
  pixel_shuffle(seq, y, x, batch, h, w, c_out, r, false);
}

void vkrt_op_pixel_shuffle_nhwc(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                                uint32_t w, uint32_t c_out, uint32_t r)
{
  pixel_shuffle(seq, y, x, batch, h, w, c_out, r, true);
}

/* --- channel concatenation ------------------------------------------------------------------- */

typedef struct { uint32_t e0, count, hw, ca, cb, b_batch; int32_t y_add, a_add, b_add; } ConcatPush;

void vkrt_op_concat(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b_, uint32_t batch,
                    uint32_t hw, uint32_t ca, uint32_t cb, uint32_t b_batch)
{
  static const char op[] = "concat";
  if (!batch || !hw || !ca || !cb || !b_batch) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive");
    return;
  }
  uint64_t y_img = (uint64_t)hw * (ca + cb), a_img = (uint64_t)hw * ca;
  if (y_img * batch > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  OpWin bw = { 0 };
  if (!op_check_elems(seq, op, "y", y, y_img * batch * 4, 4) || !op_check_elems(seq, op, "a", a, a_img * batch * 4, 4) ||
      !op_win_whole(seq, op, "b", b_, (uint64_t)b_batch * hw * cb * 4, 4, &bw))
    return;
  uint64_t sizes[2] = { y_img * 4, a_img * 4 };
  uint32_t per = op_images_per_window(seq, batch, sizes, 2);
  if (!per) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one image does not fit a binding");
    return;
  }
  for (uint32_t b0 = 0; b0 < batch; b0 += per) {
    uint32_t nb = MIN(per, batch - b0);
    OpWin yw, aw;
    if (!op_win(seq, y, b0 * y_img * 4, (b0 + nb) * y_img * 4, 4, &yw) ||
        !op_win(seq, a, b0 * a_img * 4, (b0 + nb) * a_img * 4, 4, &aw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    ConcatPush push = { (uint32_t)(b0 * y_img), (uint32_t)(nb * y_img), hw, ca, cb, b_batch,
                        yw.add, aw.add, bw.add };
    VkrtDispatch d = {
      .shader = "gen_concat",
      .n_bindings = 3,
      .bindings = { yw.bind, aw.bind, bw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { op_stride_groups(push.count), 1, 1 },
    };
    vkrt_seq_dispatch(seq, &d);
  }
}

/* --- CFG + Euler ----------------------------------------------------------------------------- */

typedef struct {
  uint32_t e0, count, total;
  uint32_t flags;
  int32_t z_add, v_add, x0_add, vo_add, p_add, zp_add, o_add;
  uint32_t hw, ch, per, rgb_batch;
  float m[12];
  float bias[3];
} CfgPush;

void vkrt_op_cfg_euler(VkrtSeq *seq, VkrtTensor z, VkrtTensor v, VkrtTensor params, uint32_t n,
                       uint32_t per, const VkrtCfgEulerOut *out)
{
  static const char op[] = "cfg_euler";
  static const VkrtCfgEulerOut none = { 0 };
  if (!out)
    out = &none;
  uint64_t total = (uint64_t)n * per;
  if (total == 0)
    return;
  if (2 * total > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  bool rgb = out->rgba.buf != NULL;
  if (rgb && (!out->factors || !out->bias || out->rgb_batch == 0 || out->rgb_batch > n || out->hw == 0 ||
              per % out->hw != 0)) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "a preview needs per = channels x hw, factors and 1..n images");
    return;
  }
  OpWin zw = { 0 }, vw = { 0 }, pw = { 0 }, xw = { 0 }, ow = { 0 }, zpw = { 0 }, rw = { 0 };
  if (!op_win_whole(seq, op, "z", z, total * 4, 4, &zw) ||
      !op_win_whole(seq, op, "v", v, 2 * total * 4, 4, &vw) ||
      !op_win_whole(seq, op, "params", params, 3 * 4, 4, &pw))
    return;
  uint32_t flags = 0;
  /* unused outputs bind z again: the shader never touches them */
  xw = ow = zpw = rw = zw;
  if (out->x0.buf) {
    if (!op_win_whole(seq, op, "x0", out->x0, total * 4, 4, &xw))
      return;
    flags |= 1;
  }
  if (out->v_out.buf) {
    if (!op_win_whole(seq, op, "v_out", out->v_out, total * 4, 4, &ow))
      return;
    flags |= 2;
  }
  if (out->z_prev.buf) {
    if (!op_win_whole(seq, op, "z_prev", out->z_prev, total * 4, 4, &zpw))
      return;
    flags |= 4;
  }
  if (rgb) {
    if (!op_win_whole(seq, op, "rgba", out->rgba, (uint64_t)out->rgb_batch * out->hw * 4, 4, &rw))
      return;
    flags |= 8;
  }
  uint32_t hw = rgb ? out->hw : per, ch = per / hw;
  uint64_t pixels = (uint64_t)n * hw;
  CfgPush push = { 0, (uint32_t)pixels, (uint32_t)total, flags, zw.add, vw.add, xw.add, ow.add, pw.add,
                   zpw.add, rw.add, hw, ch, per, rgb ? out->rgb_batch : 0, { 0 }, { 0 } };
  if (rgb)
    for (int i = 0; i < 4; i++) {
      for (int c = 0; c < 3; c++)
        push.m[i * 3 + c] = out->factors[i][c];
      if (i < 3)
        push.bias[i] = out->bias[i];
    }
  VkrtDispatch d = {
    .shader = "gen_cfg_euler",
    .n_bindings = 7,
    .bindings = { zw.bind, vw.bind, xw.bind, ow.bind, pw.bind, zpw.bind, rw.bind },
    .push = &push,
    .push_size = sizeof push,
    .groups = { op_stride_groups(pixels), 1, 1 },
  };
  vkrt_seq_dispatch(seq, &d);
}

/* --- transpose ------------------------------------------------------------------------------ */

typedef struct { uint32_t e0, count, rows, cols; int32_t y_add, x_add; } TransposePush;

void vkrt_op_transpose(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t rows, uint32_t cols)
{
  static const char op[] = "transpose";
  uint64_t n = (uint64_t)rows * cols;
  if (n == 0)
    return;
  if (n > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  OpWin yw = { 0 }, xw = { 0 };
  if (!op_win_whole(seq, op, "y", y, n * 4, 4, &yw) || !op_win_whole(seq, op, "x", x, n * 4, 4, &xw))
    return;
  TransposePush push = { 0, (uint32_t)n, rows, cols, yw.add, xw.add };
  dispatch2(seq, "gen_transpose", yw.bind, xw.bind, &push, sizeof push, n);
}
