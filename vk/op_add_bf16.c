#include "ops_vision.h"
#include "op_util.h"

typedef struct {
  uint32_t n;
  uint32_t off_y, off_a, off_b;
} AddPush;

void vkrt_op_add_bf16(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n)
{
  static const char op[] = "add_bf16";
  if (n == 0)
    return;
  const bool has_a = a.buf != NULL;
  const uint64_t win = op_window_bytes(seq, false) / 4;  /* elements per dispatch */
  if (win == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "the device's binding range is too small");
    return;
  }
  for (uint64_t i0 = 0; i0 < n; i0 += win) {
    uint32_t m = (uint32_t)MIN(win, n - i0);
    OpBind by = { 0 }, ba = { 0 }, bb = { 0 };
    if (!op_bind_bytes(seq, op, "y", op_slice(y, i0 * 4), (uint64_t)m * 4, 4, &by) ||
        (has_a && !op_bind_bytes(seq, op, "a", op_slice(a, i0 * 4), (uint64_t)m * 4, 4, &ba)) ||
        !op_bind_bytes(seq, op, "b", op_slice(b, i0 * 2), (uint64_t)m * 2, 2, &bb))
      return;
    if (!has_a)
      ba = by;  /* bound in a's slot but never read (HAS_A = 0) */
    AddPush push = { m, by.off, ba.off, bb.off };
    VkrtDispatch d = {
      .shader = "add_bf16",
      .n_bindings = 3,
      .bindings = { by.bind, ba.bind, bb.bind },
      .push = &push,
      .push_size = sizeof push,
      .spec = { has_a ? 1u : 0u },
      .n_spec = 1,
      .flops = has_a ? m : 0,
    };
    vkrt_groups_linear(((uint64_t)m + 255) / 256, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
