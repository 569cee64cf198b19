/* Embedding lookup. The table (400 MiB for the LLM) exceeds a storage binding on most devices, so
 * it is bound in row windows: one dispatch per window, each writing the rows whose id falls in it. */
#include "ops.h"
#include "op_util.h"

void vkrt_op_embed(VkrtSeq *seq, VkrtTensor y, VkrtTensor table, VkrtTensor ids, uint32_t n, uint32_t dim,
                   uint32_t vocab)
{
  const char *op = "embed";
  uint64_t row_bytes = (uint64_t)dim * 2;
  if (!op_check(seq, op, "y", y, (uint64_t)n * dim * 4) || !op_check(seq, op, "table", table, vocab * row_bytes) ||
      !op_check(seq, op, "ids", ids, (uint64_t)n * 4))
    return;
  if (n == 0 || dim == 0) return;
  if ((uint64_t)n * dim > UINT32_MAX || (uint64_t)n * dim * 4 > op_window_bytes(seq, false)) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "%u rows of %u exceed one binding; split the call", n, dim);
    return;
  }
  /* 8 bf16 per texel: rows start on whole texels */
  bool tex = dim % 8 == 0 && table.offset % 16 == 0;
  uint32_t chunk = tex ? 8 : 32;
  /* window rows: + 1 row of slack because a window may start in the middle of a word */
  uint64_t per = op_window_bytes(seq, tex) / row_bytes;
  per = per > 1 ? per - 1 : 0;
  if (per == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "a row of %u values exceeds the device's binding limit", dim);
    return;
  }
  OpBind by = { 0 }, bi = { 0 };
  if (!op_bind(seq, op, "y", vkrt_tensor_sub(y, 0, (uint64_t)n * dim * 4), false, 4, &by) ||
      !op_bind(seq, op, "ids", vkrt_tensor_sub(ids, 0, (uint64_t)n * 4), false, 4, &bi))
    return;
  uint64_t nwin = vocab ? (vocab + per - 1) / per : 1;
  for (uint64_t wi = 0; wi < nwin; wi++) {
    uint64_t v0 = wi * per, vw = vocab ? MIN(per, vocab - v0) : 0;
    OpBind bt = { 0 };
    VkrtTensor win = vkrt_tensor_sub(table, v0 * row_bytes, MAX(vw * row_bytes, 4));
    if (!op_bind(seq, op, "table", win, tex, tex ? 16 : 2, &bt)) return;
    struct { uint32_t n, dim, vocab, v0, vw, y_off, t_off, ids_off, first; } push = {
      n, dim, vocab, (uint32_t)v0, (uint32_t)vw, by.off, bt.off, bi.off, wi == 0 };
    VkrtDispatch d = {
      .shader = tex ? "embed_tex" : "embed",
      .texel_mask = tex ? 0x2 : 0,
      .n_bindings = 3,
      .bindings = { by.bind, bt.bind, bi.bind },
      .push = &push,
      .push_size = sizeof push,
    };
    vkrt_groups_linear(((uint64_t)n * ((dim + chunk - 1) / chunk) + 63) / 64, d.groups);
    vkrt_seq_dispatch(seq, &d);
  }
}
