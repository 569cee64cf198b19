/* vkrt_op_dwconv2d: depthwise convolution (shaders/dwconv.comp), whole images per dispatch. CPU
 * devices take the VEC4 form (texel loads, 4 channels x DW_TX pixels per invocation) where the
 * channels and offsets allow; JANUSFLOW_DWCONV_KERNEL=vec|scalar forces one. */
#include "ops_gen.h"
#include "op_util.h"

#define DW_TX 8u  /* TX in dwconv.comp */

typedef struct {
  uint32_t e0, count;
  uint32_t h, wd, c, k, pad;
  uint32_t ho, wo;
  int32_t y_add, x_add, w_add, b_add;
  uint32_t has_bias;
} DwPush;

void vkrt_dwconv_weight_reorder(uint16_t *dst, const uint16_t *src, uint32_t c, uint32_t k)
{
  for (uint32_t ch = 0; ch < c; ch++)
    for (uint32_t t = 0; t < k * k; t++)
      dst[(uint64_t)t * c + ch] = src[(uint64_t)ch * k * k + t];
}

void vkrt_op_dwconv2d(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                      uint32_t batch, uint32_t h, uint32_t w_, uint32_t c, uint32_t k, uint32_t pad)
{
  static const char op[] = "dwconv2d";
  if (!batch || !h || !w_ || !c || !k) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes and kernel must be positive");
    return;
  }
  if (h + 2 * pad < k || w_ + 2 * pad < k) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "the kernel is larger than the padded input");
    return;
  }
  uint32_t ho = h + 2 * pad - k + 1, wo = w_ + 2 * pad - k + 1;
  uint64_t x_img = (uint64_t)h * w_ * c, y_img = (uint64_t)ho * wo * c;
  if (x_img * batch > OP_WIN_MAX_ELEMS || y_img * batch > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  OpWin ww = { 0 }, bw = { 0 };
  if (!op_check_elems(seq, op, "y", y, y_img * batch * 4, 4) || !op_check_elems(seq, op, "x", x, x_img * batch * 4, 4) ||
      !op_win_whole(seq, op, "w", w, (uint64_t)k * k * c * 2, 2, &ww))
    return;
  bool has_bias = bias.buf != NULL;
  if (has_bias) {
    if (!op_win_whole(seq, op, "bias", bias, (uint64_t)c * 2, 2, &bw))
      return;
  } else {
    bw = ww;
  }
  bool vec = op_cpu_form(vkrt_seq_context(seq), "JANUSFLOW_DWCONV_KERNEL", "vec", "scalar") && c % 8 == 0 &&
             x.offset % 16 == 0 && w.offset % 16 == 0 && op_win_texel(seq, w, 0, (uint64_t)k * k * c * 2, &ww);
  uint64_t sizes[2] = { x_img * 4, y_img * 4 };
  uint32_t per = op_images_per_window(seq, batch, sizes, 2);
  if (!per) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one image does not fit a binding");
    return;
  }
  for (uint32_t b0 = 0; b0 < batch; b0 += per) {
    uint32_t nb = MIN(per, batch - b0);
    OpWin xw, yw;
    bool xok = vec ? op_win_texel(seq, x, b0 * x_img * 4, (b0 + nb) * x_img * 4, &xw)
                   : op_win(seq, x, b0 * x_img * 4, (b0 + nb) * x_img * 4, 4, &xw);
    if (!xok || !op_win(seq, y, b0 * y_img * 4, (b0 + nb) * y_img * 4, 4, &yw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    DwPush push = {
      .e0 = (uint32_t)(b0 * y_img), .count = (uint32_t)(nb * y_img),
      .h = h, .wd = w_, .c = c, .k = k, .pad = pad, .ho = ho, .wo = wo,
      .y_add = yw.add, .x_add = xw.add, .w_add = ww.add, .b_add = bw.add, .has_bias = has_bias,
    };
    VkrtDispatch d = {
      .shader = "gen_dwconv",
      .n_bindings = 4,
      .bindings = { yw.bind, xw.bind, ww.bind, bw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { op_stride_groups(push.count), 1, 1 },
      .flops = 2ull * push.count * k * k,
    };
    if (vec) {
      /* work items: (image, output row, block of DW_TX pixels, channel quad) */
      uint64_t per_img = (uint64_t)ho * ((wo + DW_TX - 1) / DW_TX) * (c / 4);
      push.e0 = (uint32_t)(b0 * per_img);
      push.count = (uint32_t)(nb * per_img);
      d.shader = "gen_dwconv4";
      d.texel_mask = 0x6;
      d.spec[0] = k;
      d.n_spec = 1;
      vkrt_groups_linear((push.count + 63) / 64, d.groups);
    }
    vkrt_seq_dispatch(seq, &d);
  }
}
