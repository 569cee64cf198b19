#include "ops_vision.h"
#include "op_vision_util.h"

typedef struct {
  uint32_t n;
} AddPush;

void vkrt_op_add_bf16(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n)
{
  static const char op[] = "add_bf16";
  if (n == 0)
    return;
  if (!y.buf || !b.buf) {
    opv_fail(seq, op, "y or b is missing");
    return;
  }
  const VkrtDeviceInfo *info = vkrt_context_info(vkrt_seq_context(seq));
  const bool has_a = a.buf != NULL;
  /* Windows of a multiple of the storage alignment in elements keep every window's offsets
   * aligned for both the fp32 and the bf16 operands. */
  uint64_t align = info->min_storage_align ? info->min_storage_align : 1;
  uint64_t win = info->max_storage_range / 4;
  win -= win % align;
  if (win == 0) {
    opv_fail(seq, op, "no aligned window fits the storage-buffer range");
    return;
  }
  for (uint64_t i0 = 0; i0 < n; i0 += win) {
    uint32_t m = (uint32_t)MIN(win, n - i0);
    VkrtTensor ys = vkrt_tensor_sub(y, i0 * 4, y.size > i0 * 4 ? y.size - i0 * 4 : 0);
    VkrtTensor as = has_a ? vkrt_tensor_sub(a, i0 * 4, a.size > i0 * 4 ? a.size - i0 * 4 : 0) : ys;
    VkrtTensor bs = vkrt_tensor_sub(b, i0 * 2, b.size > i0 * 2 ? b.size - i0 * 2 : 0);
    if (!opv_check(seq, op, "y", ys, (uint64_t)m * 4) || !opv_check(seq, op, "a", as, (uint64_t)m * 4) ||
        !opv_check(seq, op, "b", bs, (uint64_t)m * 2))
      return;
    AddPush push = { m };
    VkrtDispatch d = {
      .shader = "add_bf16",
      .n_bindings = 3,
      /* without a, y is bound again in a's slot and never read (HAS_A = 0) */
      .bindings = { vkrt_tensor_sub(ys, 0, (uint64_t)m * 4), vkrt_tensor_sub(as, 0, (uint64_t)m * 4),
                    opv_bf16_view(bs, m) },
      .push = &push,
      .push_size = sizeof push,
      .spec = { has_a ? 1u : 0u },
      .n_spec = 1,
      .flops = has_a ? m : 0,
    };
    opv_groups(((uint64_t)m + 255) / 256, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
