/* Storage conversions: fp32 -> fp16 for the fp16 K/V cache (shaders/convert.comp). */
#include "ops.h"
#include "op_util.h"

/* n_pairs (1 or 2) conversions of n values each, in one dispatch per window of words. */
static void f32_to_f16(VkrtSeq *seq, int n_pairs, const VkrtTensor *dst, const VkrtTensor *src, uint64_t n)
{
  const char *op = "f32_to_f16";
  if (n % 2) {
    /* a lone half would share its word with whatever follows it in dst */
    op_fail(seq, VKRT_ERROR_FAILED, op, "%" G_GUINT64_FORMAT " values: the count must be even", n);
    return;
  }
  for (int i = 0; i < n_pairs; i++) {
    if (!op_check(seq, op, "dst", dst[i], n * 2) || !op_check(seq, op, "src", src[i], n * 4)) return;
    if (dst[i].offset % 4 || src[i].offset % 4) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "dst and src must start on 4-byte boundaries");
      return;
    }
  }
  if (n == 0) return;
  uint64_t words = n / 2, chunk = op_window_bytes(seq, false) / 8;  /* words whose source fits a window */
  if (chunk == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "device binding limit too small");
    return;
  }
  for (uint64_t w0 = 0; w0 < words; w0 += chunk) {
    uint64_t c = MIN(chunk, words - w0);
    OpBind b[4];
    memset(b, 0, sizeof b);
    for (int i = 0; i < 2; i++) {
      int k = MIN(i, n_pairs - 1);  /* one pair: bound twice, the second never read */
      if (!op_bind(seq, op, "dst", vkrt_tensor_sub(dst[k], w0 * 4, c * 4), false, 4, &b[2 * i]) ||
          !op_bind(seq, op, "src", vkrt_tensor_sub(src[k], w0 * 8, c * 8), false, 4, &b[2 * i + 1]))
        return;
    }
    uint32_t push[6] = { (uint32_t)c, (uint32_t)n_pairs, b[0].off, b[1].off, b[2].off, b[3].off };
    VkrtDispatch d = {
      .shader = "f32_to_f16",
      .n_bindings = 4,
      .bindings = { b[0].bind, b[1].bind, b[2].bind, b[3].bind },
      .push = push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear((c * n_pairs + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}

void vkrt_op_f32_to_f16(VkrtSeq *seq, VkrtTensor dst, VkrtTensor src, uint64_t n)
{
  f32_to_f16(seq, 1, &dst, &src, n);
}

void vkrt_op_f32_to_f16_pair(VkrtSeq *seq, VkrtTensor dst_a, VkrtTensor src_a, VkrtTensor dst_b, VkrtTensor src_b,
                             uint64_t n)
{
  const VkrtTensor dst[2] = { dst_a, dst_b }, src[2] = { src_a, src_b };
  f32_to_f16(seq, 2, dst, src, n);
}
