#include "ops_vision.h"
#include "op_util.h"

typedef struct {
  uint32_t rows, dim;
  float eps;
  uint32_t off_y, off_x, off_w, off_b;
} LnPush;

void vkrt_op_layernorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor b,
                       uint32_t rows, uint32_t dim, float eps)
{
  static const char op[] = "layernorm";
  if (rows == 0)
    return;
  if (dim == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "dim is 0");
    return;
  }
  OpBind bw = { 0 }, bb = { 0 };
  if (!op_bind_bytes(seq, op, "w", w, (uint64_t)dim * 2, 2, &bw) || !op_bind_bytes(seq, op, "b", b, (uint64_t)dim * 2, 2, &bb))
    return;
  const uint64_t row_bytes = (uint64_t)dim * 4;
  const uint64_t win = op_window_bytes(seq, false) / row_bytes;  /* rows per dispatch */
  if (win == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "a row of %u floats exceeds the device's binding range", dim);
    return;
  }
  /* Small workgroups on CPU devices: lavapipe runs a workgroup's barrier phases one after the
   * other, so wide groups only add overhead there. */
  const VkrtDeviceInfo *info = vkrt_context_info(vkrt_seq_context(seq));
  uint32_t wg = info->type == VKRT_DEVICE_CPU ? 16 : 128;
  while (wg > 16 && wg / 2 >= dim)
    wg /= 2;

  for (uint64_t r0 = 0; r0 < rows; r0 += win) {
    uint32_t n = (uint32_t)MIN(win, rows - r0);
    OpBind by = { 0 }, bx = { 0 };
    if (!op_bind_bytes(seq, op, "y", op_slice(y, r0 * row_bytes), n * row_bytes, 4, &by) ||
        !op_bind_bytes(seq, op, "x", op_slice(x, r0 * row_bytes), n * row_bytes, 4, &bx))
      return;
    LnPush push = { n, dim, eps, by.off, bx.off, bw.off, bb.off };
    VkrtDispatch d = {
      .shader = "layernorm",
      .n_bindings = 4,
      .bindings = { by.bind, bx.bind, bw.bind, bb.bind },
      .push = &push,
      .push_size = sizeof push,
      .spec = { wg },
      .n_spec = 1,
      /* mean, centred square, normalise, scale, shift: about 8 flops per value */
      .flops = (uint64_t)n * dim * 8,
    };
    vkrt_groups_linear(n, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
