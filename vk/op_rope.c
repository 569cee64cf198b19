/* Rotary embedding (HF rotate-half) in place on the heads at the start of each row. */
#include "ops.h"
#include "op_util.h"
#include <math.h>

void vkrt_op_rope(VkrtSeq *seq, VkrtTensor x, VkrtTensor pos, uint32_t rows, uint32_t row_stride,
                  uint32_t n_heads, uint32_t head_dim, float theta)
{
  const char *op = "rope";
  if (head_dim % 2 || (uint64_t)n_heads * head_dim > row_stride || !(theta > 0.0f)) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "bad shape: %u heads of %u in rows of %u, theta %g", n_heads, head_dim,
            row_stride, theta);
    return;
  }
  if (rows == 0 || n_heads == 0 || head_dim == 0) return;
  uint64_t row_bytes = (uint64_t)row_stride * 4;
  uint64_t used = ((uint64_t)(rows - 1) * row_stride + (uint64_t)n_heads * head_dim) * 4;
  if (!op_check(seq, op, "x", x, used) || !op_check(seq, op, "pos", pos, (uint64_t)rows * 4)) return;
  uint64_t per = op_window_bytes(seq, false) / row_bytes;
  if (per == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "a row of %u values exceeds the device's binding limit", row_stride);
    return;
  }
  for (uint64_t r0 = 0; r0 < rows; r0 += per) {
    uint64_t c = MIN(per, rows - r0);
    uint64_t bytes = ((c - 1) * row_stride + (uint64_t)n_heads * head_dim) * 4;
    OpBind bx = { 0 }, bp = { 0 };
    if (!op_bind(seq, op, "x", vkrt_tensor_sub(x, r0 * row_bytes, bytes), false, 4, &bx) ||
        !op_bind(seq, op, "pos", vkrt_tensor_sub(pos, r0 * 4, c * 4), false, 4, &bp))
      return;
    struct { uint32_t rows, row_stride, n_heads, head_dim, x_off, pos_off; float log2_theta; } push = {
      (uint32_t)c, row_stride, n_heads, head_dim, bx.off, bp.off, (float)log2((double)theta) };
    VkrtDispatch d = {
      .shader = "rope",
      .n_bindings = 2,
      .bindings = { bx.bind, bp.bind },
      .push = &push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear((c * (head_dim / 2) + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
