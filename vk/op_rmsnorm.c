/* RMSNorm over rows, chunked so that every chunk of rows fits one binding. */
#include "ops.h"
#include "op_util.h"

void vkrt_op_rmsnorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, uint32_t rows, uint32_t dim, float eps)
{
  const char *op = "rmsnorm";
  uint64_t row_bytes = (uint64_t)dim * 4;
  if (!op_check(seq, op, "y", y, rows * row_bytes) || !op_check(seq, op, "x", x, rows * row_bytes) ||
      !op_check(seq, op, "w", w, (uint64_t)dim * 2))
    return;
  if (rows == 0 || dim == 0) return;
  uint64_t per = op_window_bytes(seq, false) / row_bytes;
  if (per == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "a row of %u values exceeds the device's binding limit", dim);
    return;
  }
  OpBind bw = { 0 };
  if (!op_bind(seq, op, "w", vkrt_tensor_sub(w, 0, (uint64_t)dim * 2), false, 2, &bw)) return;
  for (uint64_t r0 = 0; r0 < rows; r0 += per) {
    uint64_t c = MIN(per, rows - r0);
    OpBind by = { 0 }, bx = { 0 };
    if (!op_bind(seq, op, "y", vkrt_tensor_sub(y, r0 * row_bytes, c * row_bytes), false, 4, &by) ||
        !op_bind(seq, op, "x", vkrt_tensor_sub(x, r0 * row_bytes, c * row_bytes), false, 4, &bx))
      return;
    struct { uint32_t rows, dim, y_off, x_off, w_off; float eps; } push = {
      (uint32_t)c, dim, by.off, bx.off, bw.off, eps };
    VkrtDispatch d = {
      .shader = "rmsnorm",
      .n_bindings = 3,
      .bindings = { by.bind, bx.bind, bw.bind },
      .push = &push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear((c + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
