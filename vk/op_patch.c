#include "ops_vision.h"
#include "ops.h"
#include "op_vision_util.h"

typedef struct {
  uint32_t channels, height, width, psize;
  uint32_t gh, gw;
  uint32_t total;
} Im2colPush;

void vkrt_op_im2col(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t channels, uint32_t height,
                    uint32_t width, uint32_t patch)
{
  static const char op[] = "im2col";
  if (patch == 0 || channels == 0) {
    opv_fail(seq, op, "patch and channels must be positive");
    return;
  }
  uint32_t gh = height / patch, gw = width / patch;
  uint64_t total = (uint64_t)gh * gw * channels * patch * patch;
  if (total == 0)
    return;
  if (total > UINT32_MAX) {
    opv_fail(seq, op, "%" G_GUINT64_FORMAT " outputs exceed the 32-bit index range", total);
    return;
  }
  uint64_t in_bytes = (uint64_t)channels * height * width * 4;
  if (!opv_check(seq, op, "y", y, total * 4) || !opv_check(seq, op, "x", x, in_bytes))
    return;
  Im2colPush push = { channels, height, width, patch, gh, gw, (uint32_t)total };
  VkrtDispatch d = {
    .shader = "im2col",
    .n_bindings = 2,
    .bindings = { vkrt_tensor_sub(y, 0, total * 4), vkrt_tensor_sub(x, 0, in_bytes) },
    .push = &push,
    .push_size = sizeof push,
    .flops = 0,  /* data movement only */
  };
  opv_groups((total + 255) / 256, d.groups);
  vkrt_seq_dispatch(seq, &d);
}

void vkrt_op_patch_embed(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor cols, VkrtTensor w,
                         VkrtTensor bias, uint32_t channels, uint32_t height, uint32_t width,
                         uint32_t patch, uint32_t out)
{
  if (patch == 0) {
    opv_fail(seq, "patch_embed", "patch must be positive");
    return;
  }
  uint32_t n = (height / patch) * (width / patch);
  uint32_t k = channels * patch * patch;
  vkrt_op_im2col(seq, cols, x, channels, height, width, patch);
  if (n && !vkrt_seq_has_error(seq))
    vkrt_op_matmul(seq, y, vkrt_tensor_sub(cols, 0, (uint64_t)n * k * 4), w, bias, n, out, k, 0);
}
