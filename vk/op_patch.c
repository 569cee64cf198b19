#include "ops_vision.h"
#include "ops.h"
#include "op_util.h"

typedef struct {
  uint32_t off_y, off_x;
  uint32_t n_ch, c0, cols;
  uint32_t ch_stride;
  uint32_t width, psize;
  uint32_t n_rows, gw;
  uint32_t total;
} Im2colPush;

/* One dispatch: channels [c0, c0 + n_ch) and patch rows [r0, r0 + n_rows). xs starts at channel
 * c0, image row r0 * patch; ys at patch row r0. */
static void im2col_dispatch(VkrtSeq *seq, VkrtTensor ys, uint64_t y_bytes, VkrtTensor xs, uint64_t x_bytes,
                            uint32_t n_ch, uint32_t c0, uint32_t cols, uint32_t ch_stride, uint32_t width,
                            uint32_t patch, uint32_t n_rows, uint32_t gw)
{
  static const char op[] = "im2col";
  OpBind by = { 0 }, bx = { 0 };
  if (!op_bind_bytes(seq, op, "y", ys, y_bytes, 4, &by) || !op_bind_bytes(seq, op, "x", xs, x_bytes, 4, &bx))
    return;
  uint64_t total = (uint64_t)n_rows * gw * n_ch * patch * patch;
  if (total > UINT32_MAX) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "%" G_GUINT64_FORMAT " outputs exceed the 32-bit index range", total);
    return;
  }
  Im2colPush push = { by.off, bx.off, n_ch, c0, cols, ch_stride, width, patch, n_rows, gw, (uint32_t)total };
  VkrtDispatch d = {
    .shader = "im2col",
    .n_bindings = 2,
    .bindings = { by.bind, bx.bind },
    .push = &push,
    .push_size = sizeof push,
    .flops = 0,  /* data movement only */
  };
  vkrt_groups_linear((total + 255) / 256, d.groups);
  vkrt_seq_dispatch(seq, &d);
}

void vkrt_op_im2col(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t channels, uint32_t height,
                    uint32_t width, uint32_t patch)
{
  static const char op[] = "im2col";
  if (patch == 0 || channels == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "patch and channels must be positive");
    return;
  }
  const uint32_t gh = height / patch, gw = width / patch;
  if (gh == 0 || gw == 0)
    return;
  const uint64_t cols = (uint64_t)channels * patch * patch;
  const uint64_t plane = (uint64_t)height * width;
  if (cols > UINT32_MAX || plane > UINT32_MAX) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "image too large");
    return;
  }
  const uint64_t y_bytes = (uint64_t)gh * gw * cols * 4, x_bytes = channels * plane * 4;
  const uint64_t win = op_window_bytes(seq, false);
  if (y_bytes <= win && x_bytes <= win) {
    im2col_dispatch(seq, y, y_bytes, x, x_bytes, channels, 0, (uint32_t)cols, (uint32_t)plane, width,
                    patch, gh, gw);
    return;
  }
  /* Too big for one binding: bands of patch rows, one channel plane at a time, so that each
   * dispatch reads a contiguous slice of x and writes a contiguous run of rows of y. */
  const uint64_t in_row = (uint64_t)patch * width * 4, out_row = (uint64_t)gw * cols * 4;
  const uint64_t band = MIN(win / in_row, win / out_row);
  if (band == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "one row of patches exceeds the device's binding range");
    return;
  }
  for (uint32_t c = 0; c < channels; c++)
    for (uint64_t r0 = 0; r0 < gh; r0 += band) {
      uint32_t n = (uint32_t)MIN(band, gh - r0);
      im2col_dispatch(seq, op_slice(y, r0 * out_row), n * out_row,
                      op_slice(x, c * plane * 4 + r0 * in_row), n * in_row, 1, c, (uint32_t)cols,
                      (uint32_t)plane, width, patch, n, gw);
    }
}

void vkrt_op_patch_embed(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor cols, VkrtTensor w,
                         VkrtTensor bias, uint32_t channels, uint32_t height, uint32_t width,
                         uint32_t patch, uint32_t out)
{
  if (patch == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, "patch_embed", "patch must be positive");
    return;
  }
  uint32_t n = (height / patch) * (width / patch);
  uint32_t k = channels * patch * patch;
  vkrt_op_im2col(seq, cols, x, channels, height, width, patch);
  if (n && !vkrt_seq_has_error(seq))
    vkrt_op_matmul(seq, y, vkrt_tensor_sub(cols, 0, (uint64_t)n * k * 4), w, bias, n, out, k, 0);
}
