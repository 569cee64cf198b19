#include "ops_vision.h"
#include "op_vision_util.h"

typedef struct {
  uint32_t rows, dim;
  float eps;
} LnPush;

/* Greatest common divisor, for picking window sizes that keep offsets aligned. */
static uint64_t gcd64(uint64_t a, uint64_t b)
{
  while (b) {
    uint64_t t = a % b;
    a = b;
    b = t;
  }
  return a;
}

void vkrt_op_layernorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor b,
                       uint32_t rows, uint32_t dim, float eps)
{
  static const char op[] = "layernorm";
  if (rows == 0 || dim == 0) {
    if (dim == 0 && rows)
      opv_fail(seq, op, "dim is 0");
    return;
  }
  if (!opv_check(seq, op, "w", w, (uint64_t)dim * 2) || !opv_check(seq, op, "b", b, (uint64_t)dim * 2))
    return;
  if (!y.buf || !x.buf) {
    opv_fail(seq, op, "x or y is missing");
    return;
  }
  const VkrtDeviceInfo *info = vkrt_context_info(vkrt_seq_context(seq));
  const uint64_t row_bytes = (uint64_t)dim * 4;
  if (row_bytes > info->max_storage_range) {
    opv_fail(seq, op, "a row of %u floats exceeds the storage-buffer range", dim);
    return;
  }
  /* Window: as many rows as one binding holds, a multiple of the rows that keep each window's
   * offset on the storage alignment. */
  uint64_t align = info->min_storage_align ? info->min_storage_align : 1;
  uint64_t step = align / gcd64(row_bytes, align);
  uint64_t win = info->max_storage_range / row_bytes;
  win -= win % step;
  if (win == 0) {
    opv_fail(seq, op, "no aligned row window fits the storage-buffer range");
    return;
  }
  /* Small workgroups on CPU devices: lavapipe runs a workgroup's barrier phases one after the
   * other, so wide groups only add overhead there. */
  uint32_t wg = info->type == VKRT_DEVICE_CPU ? 32 : 128;
  while (wg > 32 && wg / 2 >= dim)
    wg /= 2;

  for (uint64_t r0 = 0; r0 < rows; r0 += win) {
    uint32_t n = (uint32_t)MIN(win, rows - r0);
    VkrtTensor xs = vkrt_tensor_sub(x, r0 * row_bytes, x.size > r0 * row_bytes ? x.size - r0 * row_bytes : 0);
    VkrtTensor ys = vkrt_tensor_sub(y, r0 * row_bytes, y.size > r0 * row_bytes ? y.size - r0 * row_bytes : 0);
    if (!opv_check(seq, op, "x", xs, n * row_bytes) || !opv_check(seq, op, "y", ys, n * row_bytes))
      return;
    LnPush push = { n, dim, eps };
    VkrtDispatch d = {
      .shader = "layernorm",
      .n_bindings = 4,
      .bindings = { vkrt_tensor_sub(ys, 0, n * row_bytes), vkrt_tensor_sub(xs, 0, n * row_bytes),
                    opv_bf16_view(w, dim), opv_bf16_view(b, dim) },
      .push = &push,
      .push_size = sizeof push,
      .spec = { wg },
      .n_spec = 1,
      /* mean, centred square, normalise, scale, shift: about 8 flops per value */
      .flops = (uint64_t)n * dim * 8,
    };
    opv_groups(n, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
