/* silu_mul and add: element-wise over fp32 vectors, split into chunks that fit one binding. */
#include "ops.h"
#include "op_util.h"

static void eltwise(VkrtSeq *seq, const char *op, const char *shader, VkrtTensor y, VkrtTensor a,
                    VkrtTensor b, uint32_t n)
{
  if (!op_check(seq, op, "y", y, (uint64_t)n * 4) || !op_check(seq, op, "a", a, (uint64_t)n * 4) ||
      !op_check(seq, op, "b", b, (uint64_t)n * 4))
    return;
  uint64_t chunk = op_window_bytes(seq, false) / 4;
  if (chunk == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "device binding limit too small");
    return;
  }
  for (uint64_t i0 = 0; i0 < n; i0 += chunk) {
    uint64_t c = MIN(chunk, n - i0);
    OpBind by = { 0 }, ba = { 0 }, bb = { 0 };
    if (!op_bind(seq, op, "y", vkrt_tensor_sub(y, i0 * 4, c * 4), false, 4, &by) ||
        !op_bind(seq, op, "a", vkrt_tensor_sub(a, i0 * 4, c * 4), false, 4, &ba) ||
        !op_bind(seq, op, "b", vkrt_tensor_sub(b, i0 * 4, c * 4), false, 4, &bb))
      return;
    uint32_t push[4] = { (uint32_t)c, by.off, ba.off, bb.off };
    VkrtDispatch d = {
      .shader = shader,
      .n_bindings = 3,
      .bindings = { by.bind, ba.bind, bb.bind },
      .push = push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear((c + 255) / 256, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}

void vkrt_op_silu_mul(VkrtSeq *seq, VkrtTensor y, VkrtTensor gate, VkrtTensor up, uint32_t n)
{
  eltwise(seq, "silu_mul", "eltwise_silu_mul", y, gate, up, n);
}

void vkrt_op_add(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n)
{
  eltwise(seq, "add", "eltwise_add", y, a, b, n);
}
