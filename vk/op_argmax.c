/* argmax over rows and top-k of one row (shaders/argmax.comp). */
#include "ops.h"
#include "op_util.h"

void vkrt_op_argmax(VkrtSeq *seq, VkrtTensor out, VkrtTensor x, uint32_t rows, uint32_t n)
{
  const char *op = "argmax";
  if (!op_check(seq, op, "out", out, (uint64_t)rows * 4) || !op_check(seq, op, "x", x, (uint64_t)rows * n * 4))
    return;
  if (rows == 0) return;
  if (n == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "empty rows");
    return;
  }
  uint64_t per = op_window_bytes(seq, false) / ((uint64_t)n * 4);
  if (per == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "a row of %u values exceeds the device's binding limit", n);
    return;
  }
  for (uint64_t r0 = 0; r0 < rows; r0 += per) {
    uint64_t c = MIN(per, rows - r0);
    OpBind bo = { 0 }, bx = { 0 };
    if (!op_bind(seq, op, "out", vkrt_tensor_sub(out, r0 * 4, c * 4), false, 4, &bo) ||
        !op_bind(seq, op, "x", vkrt_tensor_sub(x, r0 * n * 4, c * n * 4), false, 4, &bx))
      return;
    uint32_t push[4] = { (uint32_t)c, n, bo.off, bx.off };
    VkrtDispatch d = {
      .shader = "argmax",
      .n_bindings = 2,
      .bindings = { bo.bind, bx.bind },
      .push = push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear(c, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}

void vkrt_op_topk(VkrtSeq *seq, VkrtTensor out_val, VkrtTensor out_idx, VkrtTensor x, uint32_t n, uint32_t k)
{
  const char *op = "topk";
  if (k < 1 || k > 256 || k > n) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "k = %u must be in [1, min(256, n = %u)]", k, n);
    return;
  }
  OpBind bv = { 0 }, bi = { 0 }, bx = { 0 };
  if (!op_check(seq, op, "out_val", out_val, (uint64_t)k * 4) || !op_check(seq, op, "out_idx", out_idx, (uint64_t)k * 4) ||
      !op_check(seq, op, "x", x, (uint64_t)n * 4) ||
      !op_bind(seq, op, "out_val", vkrt_tensor_sub(out_val, 0, (uint64_t)k * 4), false, 4, &bv) ||
      !op_bind(seq, op, "out_idx", vkrt_tensor_sub(out_idx, 0, (uint64_t)k * 4), false, 4, &bi) ||
      !op_bind(seq, op, "x", vkrt_tensor_sub(x, 0, (uint64_t)n * 4), false, 4, &bx))
    return;
  uint32_t push[5] = { n, k, bv.off, bi.off, bx.off };
  VkrtDispatch d = {
    .shader = "topk",
    .n_bindings = 3,
    .bindings = { bv.bind, bi.bind, bx.bind },
    .push = push,
    .push_size = sizeof push,
    .groups = { 1, 1, 1 },
  };
  vkrt_seq_dispatch(seq, &d);
}
