/* GroupNorm and GRN over NHWC activations (shaders/norm_gen.comp). GroupNorm splits an image
 * into slabs of pixels (partial statistics), so it works on images larger than one binding;
 * GRN binds whole images. Norms count no FLOPs (like the reference bench: only matmuls,
 * convolutions and attention are counted).
 *
 * GroupNorm has two forms: workgroup reductions for GPUs, and on CPU devices (lavapipe) a
 * barrier-free one, 4 channels per invocation from texel buffers (the GN4_* shaders), which was
 * 5-10x faster there on the VAE's shapes (docs/PERFORMANCE.md). JANUSFLOW_GN_KERNEL=wg|vec
 * overrides the choice (tests run both). */
#include "ops_gen.h"
#include "op_util.h"
#include <string.h>

/* --- GroupNorm ------------------------------------------------------------------------------- */

typedef struct { uint32_t hw, c, cpg, groups, slab, slabs, s0, b; int32_t x_add, part_add; } GnStatsPush;
typedef struct { uint32_t slabs, groups; float eps; int32_t st_add, part_add; } GnFinalPush;
typedef struct {
  uint32_t e0, count, hw, c, cpg, groups, silu;
  int32_t y_add, x_add, st_add, g_add, b_add;
} GnApplyPush;

/* Slab = pixels one stats workgroup reduces (about 4096 values); it must fit a window. */
static gboolean gn_plan(const VkrtContext *ctx, uint32_t hw, uint32_t c, uint32_t groups,
                        uint32_t *slab, uint32_t *slabs, uint64_t *chunk_px)
{
  if (!hw || !c || !groups || c % groups)
    return FALSE;
  uint32_t cpg = c / groups;
  uint64_t s = 4096 / cpg;
  if (s == 0)
    s = 1;
  uint64_t chunk = op_window_bytes_ctx(ctx, false) / ((uint64_t)c * 4);
  if (chunk == 0)
    return FALSE;
  if (s > chunk)
    s = chunk;
  if (s > hw)
    s = hw;
  *slab = (uint32_t)s;
  *slabs = (uint32_t)((hw + s - 1) / s);
  *chunk_px = chunk;
  return TRUE;
}

/* --- GroupNorm, CPU form ---------------------------------------------------------------------- */

typedef struct { uint32_t hw, c4, slab, slabs, s0, b, count; int32_t x_add, part_add; } Gn4StatsPush;
typedef struct {
  uint32_t hw, c, slab, slabs, cpg, groups, batch;
  float eps;
  int32_t st_add, part_add, g_add, b_add;
} Gn4FinalPush;
typedef struct { uint32_t px0, npx, c4, run, b, silu, count; int32_t y_add, x_add, st_add; } Gn4ApplyPush;

/* Pixels per stats invocation: long enough to amortise its setup, short enough that a 48x48
 * image still gives a few hundred invocations. */
#define GN4_SLAB 128u
/* Pixels per apply invocation. */
#define GN4_RUN 16u
/* Invocations one dispatch may hold: 64 per workgroup, 65535 x 65535 workgroups is more than
 * 32-bit indices allow, so the index range is the limit. */
#define GN4_MAX_INV (65535ull * 64)

static uint64_t gn4_part_bytes(uint32_t batch, uint32_t hw, uint32_t c)
{
  uint64_t slabs = (hw + GN4_SLAB - 1) / GN4_SLAB;
  return (uint64_t)batch * slabs * c * 2 * 4;
}

static uint64_t gn4_scratch_bytes(uint32_t batch, uint32_t hw, uint32_t c)
{
  return gn4_part_bytes(batch, hw, c) + (uint64_t)batch * c * 2 * 4;
}

static bool gn_use_vec(VkrtContext *ctx)
{
  return op_cpu_form(ctx, "JANUSFLOW_GN_KERNEL", "vec", "wg");
}

/* Partial statistics of every slab, in windows of at most `per` whole slabs of one image. The
 * forms differ in the window (texels for vec), the push layout and the grid: vec runs one
 * invocation per slab and 4 channels, the workgroup form a workgroup per slab and group. */
static bool gn_record_stats(VkrtSeq *seq, VkrtTensor x, OpWin pw, bool vec, uint32_t batch, uint32_t hw,
                            uint32_t c, uint32_t groups, uint32_t slab, uint32_t slabs, uint64_t per)
{
  uint64_t row = (uint64_t)c * 4;
  for (uint32_t b = 0; b < batch; b++) {
    for (uint32_t s0 = 0; s0 < slabs; s0 += (uint32_t)per) {
      uint32_t ns = (uint32_t)MIN(per, (uint64_t)slabs - s0);
      uint64_t px0 = (uint64_t)b * hw + (uint64_t)s0 * slab;
      uint64_t px1 = (uint64_t)b * hw + MIN((uint64_t)(s0 + ns) * slab, (uint64_t)hw);
      OpWin xw;
      if (!(vec ? op_win_texel(seq, x, px0 * row, px1 * row, &xw) : op_win(seq, x, px0 * row, px1 * row, 4, &xw))) {
        op_fail(seq, VKRT_ERROR_FAILED, "groupnorm", "window planning failed");
        return false;
      }
      GnStatsPush wg = { hw, c, c / groups, groups, slab, slabs, s0, b, xw.add, pw.add };
      Gn4StatsPush v = { hw, c / 4, slab, slabs, s0, b, ns * (c / 4), xw.add, pw.add };
      uint32_t wgs = (v.count + 63) / 64;
      VkrtDispatch d = {
        .shader = vec ? "gen_gn4_stats" : "gen_gn_stats",
        .n_bindings = 2,
        .bindings = { pw.bind, xw.bind },
        .push = vec ? (const void *)&v : (const void *)&wg,
        .push_size = vec ? sizeof v : sizeof wg,
        .groups = { vec ? MIN(wgs, 65535u) : ns, vec ? (wgs + 65534) / 65535 : groups, 1 },
        .texel_mask = vec ? 0x2u : 0,
      };
      vkrt_seq_dispatch(seq, &d);
    }
  }
  return true;
}

/* Arguments already checked by vkrt_op_groupnorm; c % 4 == 0, x and y on 16-byte offsets. */
static void groupnorm_vec(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, OpWin gw, OpWin bw, VkrtTensor scratch,
                          uint32_t batch, uint32_t hw, uint32_t c, uint32_t groups, float eps, bool silu)
{
  static const char op[] = "groupnorm";
  uint32_t c4 = c / 4, slab = MIN(GN4_SLAB, hw), slabs = (hw + slab - 1) / slab;
  uint64_t part_bytes = gn4_part_bytes(batch, hw, c), st_bytes = (uint64_t)batch * c * 2 * 4;
  OpWin pw = { 0 }, pwf = { 0 }, sw = { 0 }, swv = { 0 };
  if (!op_win_whole(seq, op, "scratch partials", scratch, part_bytes, 16, &pw) ||
      !op_win_whole(seq, op, "scratch partials", scratch, part_bytes, 4, &pwf) ||
      !op_win_whole(seq, op, "scratch statistics", vkrt_tensor_sub(scratch, part_bytes, st_bytes), st_bytes, 4, &sw) ||
      !op_win_whole(seq, op, "scratch statistics", vkrt_tensor_sub(scratch, part_bytes, st_bytes), st_bytes, 16, &swv))
    return;
  uint64_t row = (uint64_t)c * 4;
  /* pixels a window may hold: both the texel read and the storage write must fit */
  uint64_t win_px = MIN(op_window_bytes(seq, true), op_window_bytes(seq, false)) / row;
  uint64_t per = MIN(win_px / slab, GN4_MAX_INV / c4);  /* slabs per stats dispatch */
  uint64_t run_px = MIN(win_px, GN4_MAX_INV / c4 * GN4_RUN) / GN4_RUN * GN4_RUN;  /* pixels per apply dispatch */
  if (per == 0 || run_px == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "a slab of %u pixels of %u channels does not fit a binding", slab, c);
    return;
  }
  if (!gn_record_stats(seq, x, pw, true, batch, hw, c, groups, slab, slabs, per))
    return;
  Gn4FinalPush fpush = { hw, c, slab, slabs, c / groups, groups, batch, eps, sw.add, pwf.add, gw.add, bw.add };
  VkrtDispatch fd = {
    .shader = "gen_gn4_final",
    .n_bindings = 4,
    .bindings = { sw.bind, pwf.bind, gw.bind, bw.bind },
    .push = &fpush,
    .push_size = sizeof fpush,
    .groups = { (batch * groups + 63) / 64, 1, 1 },
  };
  vkrt_seq_dispatch(seq, &fd);
  for (uint32_t b = 0; b < batch; b++) {
    for (uint64_t q0 = 0; q0 < hw; q0 += run_px) {
      uint64_t q1 = MIN(q0 + run_px, (uint64_t)hw);
      uint64_t px0 = (uint64_t)b * hw + q0, px1 = (uint64_t)b * hw + q1;
      OpWin xw, yw;
      if (!op_win_texel(seq, x, px0 * row, px1 * row, &xw) || !op_win(seq, y, px0 * row, px1 * row, 16, &yw)) {
        op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
        return;
      }
      uint32_t npx = (uint32_t)(q1 - q0);
      Gn4ApplyPush push = {
        .px0 = (uint32_t)px0, .npx = npx, .c4 = c4, .run = GN4_RUN, .b = b, .silu = silu,
        .count = (npx + GN4_RUN - 1) / GN4_RUN * c4, .y_add = yw.add, .x_add = xw.add, .st_add = swv.add,
      };
      uint32_t wgs = (push.count + 63) / 64;
      VkrtDispatch d = {
        .shader = "gen_gn4_apply",
        .n_bindings = 3,
        .bindings = { yw.bind, xw.bind, swv.bind },
        .push = &push,
        .push_size = sizeof push,
        .groups = { MIN(wgs, 65535u), (wgs + 65534) / 65535, 1 },
        .texel_mask = 0x2u,
      };
      vkrt_seq_dispatch(seq, &d);
    }
  }
}

uint64_t vkrt_op_groupnorm_scratch_bytes(const VkrtContext *ctx, uint32_t batch, uint32_t hw,
                                         uint32_t c, uint32_t groups)
{
  uint32_t slab, slabs;
  uint64_t chunk;
  if (!gn_plan(ctx, hw, c, groups, &slab, &slabs, &chunk))
    return 4;
  /* either form may run (it depends on the views' offsets too): room for the larger, and a
   * texel's alignment between the partials and the statistics */
  uint64_t wg = ((uint64_t)batch * slabs * groups * 3 + (uint64_t)batch * groups * 2) * 4;
  return MAX(wg, gn4_scratch_bytes(batch, hw, c));
}

void vkrt_op_groupnorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor gamma, VkrtTensor beta,
                       VkrtTensor scratch, uint32_t batch, uint32_t hw, uint32_t c, uint32_t groups,
                       float eps, bool silu)
{
  static const char op[] = "groupnorm";
  VkrtContext *ctx = vkrt_seq_context(seq);
  if (!batch || !hw || !c || !groups || c % groups) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive and channels a multiple of groups");
    return;
  }
  uint32_t slab, slabs;
  uint64_t chunk_px;
  if (!gn_plan(ctx, hw, c, groups, &slab, &slabs, &chunk_px)) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one pixel of %u channels does not fit a binding", c);
    return;
  }
  uint64_t total = (uint64_t)batch * hw * c;
  if (total > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  uint64_t part_bytes = (uint64_t)batch * slabs * groups * 3 * 4, st_bytes = (uint64_t)batch * groups * 2 * 4;
  OpWin gw = { 0 }, bw = { 0 }, pw = { 0 }, sw = { 0 };
  if (!op_check_elems(seq, op, "y", y, total * 4, 4) || !op_check_elems(seq, op, "x", x, total * 4, 4) ||
      !op_win_whole(seq, op, "gamma", gamma, (uint64_t)c * 2, 2, &gw) ||
      !op_win_whole(seq, op, "beta", beta, (uint64_t)c * 2, 2, &bw))
    return;
  if (gn_use_vec(ctx) && c % 4 == 0 && x.offset % 16 == 0 && y.offset % 16 == 0 && scratch.offset % 16 == 0 &&
      op_check_elems(seq, op, "scratch", scratch, gn4_scratch_bytes(batch, hw, c), 16)) {
    groupnorm_vec(seq, y, x, gw, bw, scratch, batch, hw, c, groups, eps, silu);
    return;
  }
  if (!op_check_elems(seq, op, "scratch", scratch, part_bytes + st_bytes, 4) ||
      !op_win_whole(seq, op, "scratch partials", scratch, part_bytes, 4, &pw) ||
      !op_win_whole(seq, op, "scratch statistics", vkrt_tensor_sub(scratch, part_bytes, st_bytes),
                    st_bytes, 4, &sw))
    return;
  uint32_t cpg = c / groups;
  uint64_t row = (uint64_t)c * 4;

  uint64_t per = MIN(chunk_px / slab, 65535);  /* slabs per stats dispatch: its grid's x */
  if (!gn_record_stats(seq, x, pw, false, batch, hw, c, groups, slab, slabs, per))
    return;

  GnFinalPush fpush = { slabs, groups, eps, sw.add, pw.add };
  VkrtDispatch fd = {
    .shader = "gen_gn_final",
    .n_bindings = 2,
    .bindings = { sw.bind, pw.bind },
    .push = &fpush,
    .push_size = sizeof fpush,
    .groups = { groups, batch, 1 },
  };
  vkrt_seq_dispatch(seq, &fd);

  uint64_t npx = (uint64_t)batch * hw;
  for (uint64_t px0 = 0; px0 < npx; px0 += chunk_px) {
    uint64_t px1 = MIN(px0 + chunk_px, npx);
    OpWin xw, yw;
    if (!op_win(seq, x, px0 * row, px1 * row, 4, &xw) || !op_win(seq, y, px0 * row, px1 * row, 4, &yw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    GnApplyPush push = {
      .e0 = (uint32_t)(px0 * c), .count = (uint32_t)((px1 - px0) * c), .hw = hw, .c = c, .cpg = cpg,
      .groups = groups, .silu = silu, .y_add = yw.add, .x_add = xw.add, .st_add = sw.add,
      .g_add = gw.add, .b_add = bw.add,
    };
    VkrtDispatch d = {
      .shader = "gen_gn_apply",
      .n_bindings = 5,
      .bindings = { yw.bind, xw.bind, sw.bind, gw.bind, bw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { op_stride_groups(push.count), 1, 1 },
    };
    vkrt_seq_dispatch(seq, &d);
  }
}

/* --- GRN ------------------------------------------------------------------------------------- */

typedef struct { uint32_t b0, hw, c; int32_t x_add, s_add; } GrnStatsPush;
typedef struct { uint32_t c, batch; int32_t s_add; } GrnNormPush;
typedef struct { uint32_t e0, count, hw, c, batch; int32_t x_add, s_add, g_add, b_add; } GrnApplyPush;

uint64_t vkrt_op_grn_scratch_bytes(uint32_t batch, uint32_t c)
{
  return (uint64_t)batch * c * 2 * 4;
}

void vkrt_op_grn(VkrtSeq *seq, VkrtTensor x, VkrtTensor gamma, VkrtTensor beta, VkrtTensor scratch,
                 uint32_t batch, uint32_t hw, uint32_t c)
{
  static const char op[] = "grn";
  if (!batch || !hw || !c) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "sizes must be positive");
    return;
  }
  uint64_t img = (uint64_t)hw * c;
  if (img * batch > OP_WIN_MAX_ELEMS || batch > 65535) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  OpWin gw = { 0 }, bw = { 0 }, sw = { 0 };
  if (!op_check_elems(seq, op, "x", x, img * batch * 4, 4) ||
      !op_win_whole(seq, op, "gamma", gamma, (uint64_t)c * 2, 2, &gw) ||
      !op_win_whole(seq, op, "beta", beta, (uint64_t)c * 2, 2, &bw) ||
      !op_win_whole(seq, op, "scratch", scratch, vkrt_op_grn_scratch_bytes(batch, c), 4, &sw))
    return;
  uint64_t sizes[1] = { img * 4 };
  uint32_t per = op_images_per_window(seq, batch, sizes, 1);
  if (!per) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one image does not fit a binding");
    return;
  }
  for (uint32_t b0 = 0; b0 < batch; b0 += per) {
    uint32_t nb = MIN(per, batch - b0);
    OpWin xw;
    if (!op_win(seq, x, b0 * img * 4, (b0 + nb) * img * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    GrnStatsPush push = { b0, hw, c, xw.add, sw.add };
    VkrtDispatch d = {
      .shader = "gen_grn_stats",
      .n_bindings = 2,
      .bindings = { sw.bind, xw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { (c + 63) / 64, nb, 1 },
    };
    vkrt_seq_dispatch(seq, &d);
  }
  GrnNormPush npush = { c, batch, sw.add };
  VkrtDispatch nd = {
    .shader = "gen_grn_norm",
    .n_bindings = 1,
    .bindings = { sw.bind },
    .push = &npush,
    .push_size = sizeof npush,
    .groups = { batch, 1, 1 },
  };
  vkrt_seq_dispatch(seq, &nd);
  for (uint32_t b0 = 0; b0 < batch; b0 += per) {
    uint32_t nb = MIN(per, batch - b0);
    OpWin xw;
    if (!op_win(seq, x, b0 * img * 4, (b0 + nb) * img * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    GrnApplyPush push = {
      .e0 = (uint32_t)(b0 * img), .count = (uint32_t)(nb * img), .hw = hw, .c = c, .batch = batch,
      .x_add = xw.add, .s_add = sw.add, .g_add = gw.add, .b_add = bw.add,
    };
    VkrtDispatch d = {
      .shader = "gen_grn_apply",
      .n_bindings = 4,
      .bindings = { xw.bind, sw.bind, gw.bind, bw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { op_stride_groups(push.count), 1, 1 },
    };
    vkrt_seq_dispatch(seq, &d);
  }
}

/* --- softmax --------------------------------------------------------------------------------- */

typedef struct { uint32_t row0, n; float scale; int32_t x_add; } SoftmaxPush;

void vkrt_op_softmax(VkrtSeq *seq, VkrtTensor x, uint32_t rows, uint32_t n, float scale)
{
  static const char op[] = "softmax";
  if (!rows || !n)
    return;
  if ((uint64_t)rows * n > OP_WIN_MAX_ELEMS) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "tensors exceed the 32-bit index range");
    return;
  }
  if (!op_check_elems(seq, op, "x", x, (uint64_t)rows * n * 4, 4))
    return;
  uint64_t per = op_window_bytes(seq, false) / ((uint64_t)n * 4);
  if (per == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "one row does not fit a binding");
    return;
  }
  if (per > 65535)
    per = 65535;
  for (uint64_t r0 = 0; r0 < rows; r0 += per) {
    uint64_t nr = MIN(per, rows - r0);
    OpWin xw;
    if (!op_win(seq, x, r0 * n * 4, (r0 + nr) * n * 4, 4, &xw)) {
      op_fail(seq, VKRT_ERROR_FAILED, op, "window planning failed");
      return;
    }
    SoftmaxPush push = { (uint32_t)r0, n, scale, xw.add };
    VkrtDispatch d = {
      .shader = "gen_softmax",
      .n_bindings = 1,
      .bindings = { xw.bind },
      .push = &push,
      .push_size = sizeof push,
      .groups = { (uint32_t)nr, 1, 1 },
    };
    vkrt_seq_dispatch(seq, &d);
  }
}
