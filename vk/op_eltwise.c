/* Element-wise ops over fp32 vectors (silu_mul, add, and the matmul activation epilogues), split
 * into chunks that fit one binding. Aligned operands of a length divisible by 4 take the vec4
 * texel-buffer kernels. */
#include "ops.h"
#include "op_util.h"
#include "op_eltwise.h"

void vkrt_eltwise(VkrtSeq *seq, const char *op, const char *shader, VkrtTensor y, VkrtTensor a,
                  VkrtTensor b, uint64_t n)
{
  if (!op_check(seq, op, "y", y, n * 4) || !op_check(seq, op, "a", a, n * 4) || !op_check(seq, op, "b", b, n * 4))
    return;
  if (n == 0) return;
  bool v4 = n % 4 == 0 && y.offset % 16 == 0 && a.offset % 16 == 0 && b.offset % 16 == 0;
  uint32_t unit = v4 ? 16 : 4;
  uint64_t chunk = MIN(op_window_bytes(seq, false), op_window_bytes(seq, v4)) / unit;
  if (chunk == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "device binding limit too small");
    return;
  }
  char name[64];
  g_snprintf(name, sizeof name, "%s%s", shader, v4 ? "4" : "");
  uint64_t count = n * 4 / unit;
  for (uint64_t i0 = 0; i0 < count; i0 += chunk) {
    uint64_t c = MIN(chunk, count - i0);
    OpBind by = { 0 }, ba = { 0 }, bb = { 0 };
    if (!op_bind(seq, op, "y", vkrt_tensor_sub(y, i0 * unit, c * unit), false, unit, &by) ||
        !op_bind(seq, op, "a", vkrt_tensor_sub(a, i0 * unit, c * unit), v4, unit, &ba) ||
        !op_bind(seq, op, "b", vkrt_tensor_sub(b, i0 * unit, c * unit), v4, unit, &bb))
      return;
    uint32_t push[4] = { (uint32_t)c, by.off, ba.off, bb.off };
    VkrtDispatch d = {
      .shader = name,
      .n_bindings = 3,
      .bindings = { by.bind, ba.bind, bb.bind },
      .texel_mask = v4 ? 0x6 : 0,
      .push = push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear((c + 255) / 256, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}

void vkrt_op_silu_mul(VkrtSeq *seq, VkrtTensor y, VkrtTensor gate, VkrtTensor up, uint32_t n)
{
  vkrt_eltwise(seq, "silu_mul", "eltwise_silu_mul", y, gate, up, n);
}

void vkrt_op_add(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n)
{
  vkrt_eltwise(seq, "add", "eltwise_add", y, a, b, n);
}
