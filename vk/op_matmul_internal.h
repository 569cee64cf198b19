/* What the GEMM wrappers (op_matmul.c: bf16 weights, op_matmul_q8.c: Q8_0 weights) share: the
 * forced or configured kernel, the argument checks, and the split of an operand larger than one
 * binding into row chunks of x/y and windows of weight rows. Private to vk/. */
#pragma once

#include "ops.h"
#include "op_util.h"
#include "op_eltwise.h"

/* push-constant flags of matmul.comp and matmul_q8.comp */
enum { OP_MM_PUSH_BIAS = 1, OP_MM_PUSH_ACC = 2 };

/* The kernel forced by vkrt_ops_force_gemm, else JANUSFLOW_GEMM (read once per process), else
 * VKRT_GEMM_AUTO. Defined in op_matmul.c. */
VkrtGemmKernel op_matmul_kernel(void);

/* The VKRT_MM_* combinations both wrappers refuse. */
static inline gboolean op_matmul_check_flags(VkrtSeq *seq, const char *op, uint32_t flags)
{
  if ((flags & VKRT_MM_ACCUMULATE) && (flags & (VKRT_MM_GELU | VKRT_MM_SILU)))
    return op_fail(seq, VKRT_ERROR_FAILED, op, "ACCUMULATE cannot be combined with an activation");
  if ((flags & VKRT_MM_GELU) && (flags & VKRT_MM_SILU))
    return op_fail(seq, VKRT_ERROR_FAILED, op, "GELU and SILU are exclusive");
  return TRUE;
}

static inline uint32_t op_matmul_push_flags(uint32_t flags, bool has_bias)
{
  return (has_bias ? OP_MM_PUSH_BIAS : 0) | (flags & VKRT_MM_ACCUMULATE ? OP_MM_PUSH_ACC : 0);
}

/* The activation runs as an eltwise pass after the GEMM (NULL: none). */
static inline const char *op_matmul_activation(uint32_t flags)
{
  return flags & VKRT_MM_GELU ? "eltwise_gelu" : flags & VKRT_MM_SILU ? "eltwise_silu" : NULL;
}

/* A weight operand bound in windows of rows (one row per output column). */
typedef struct {
  const char *what;       /* its name in errors */
  VkrtTensor t;           /* row 0 starts at t's offset */
  uint64_t row_bytes;
  uint32_t unit;          /* op_bind's offset unit */
} OpMatmulWeight;

/* A GEMM to split into dispatches; operands already checked with op_check. */
typedef struct {
  const char *op;
  VkrtTensor y, x, bias;  /* bias.buf NULL: no bias */
  uint32_t M, N, K;
  bool tex;               /* x and the weights are bound as texel buffers (x: 16-byte unit) */
  int n_w;
  OpMatmulWeight w[2];
  const char *act;        /* op_matmul_activation */
} OpMatmulArgs;

/* One dispatch's share: rows [m0, m0 + mc) of x and y, output columns [n0, n0 + nc). n0 == 0
 * starts a new row chunk. */
typedef struct {
  uint64_t m0, n0;
  uint32_t mc, nc;
  OpBind x, y, w[2];
  OpBind bias;            /* a stand-in (y's binding) when there is none; never read */
} OpMatmulWindow;

/* Records the window's dispatch. FALSE stops the op (the error is recorded in seq). */
typedef gboolean (*OpMatmulRecordFn)(VkrtSeq *seq, const OpMatmulWindow *win, void *user);

/* Splits the GEMM: rows of x and y into chunks, output columns into windows of weight rows, so
 * that every binding fits the device; then the activation over each row chunk, in place. */
static inline void op_matmul_windows(VkrtSeq *seq, const OpMatmulArgs *a, OpMatmulRecordFn record, void *user)
{
  const char *op = a->op;
  const uint64_t xrow = (uint64_t)a->K * 4, yrow = (uint64_t)a->N * 4;
  const uint64_t m_chunk = MIN(op_window_bytes(seq, a->tex) / xrow, op_window_bytes(seq, false) / yrow);
  uint64_t w_row = 0;
  for (int i = 0; i < a->n_w; i++)
    w_row = MAX(w_row, a->w[i].row_bytes);
  const uint64_t n_win = op_window_bytes(seq, a->tex) / w_row;
  if (m_chunk == 0 || n_win == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "rows of %u / %u values exceed the device's binding limit", a->K, a->N);
    return;
  }
  const bool has_bias = a->bias.buf != NULL;
  for (uint64_t m0 = 0; m0 < a->M; m0 += m_chunk) {
    OpMatmulWindow w = { .m0 = m0, .mc = (uint32_t)MIN(m_chunk, a->M - m0) };
    if (!op_bind(seq, op, "x", vkrt_tensor_sub(a->x, m0 * xrow, w.mc * xrow), a->tex, a->tex ? 16 : 4, &w.x) ||
        !op_bind(seq, op, "y", vkrt_tensor_sub(a->y, m0 * yrow, w.mc * yrow), false, 4, &w.y))
      return;
    for (uint64_t n0 = 0; n0 < a->N; n0 += n_win) {
      w.n0 = n0;
      w.nc = (uint32_t)MIN(n_win, a->N - n0);
      for (int i = 0; i < a->n_w; i++) {
        const OpMatmulWeight *wt = &a->w[i];
        if (!op_bind(seq, op, wt->what, vkrt_tensor_sub(wt->t, n0 * wt->row_bytes, w.nc * wt->row_bytes), a->tex,
                     wt->unit, &w.w[i]))
          return;
      }
      if (has_bias) {
        if (!op_bind(seq, op, "bias", vkrt_tensor_sub(a->bias, n0 * 2, w.nc * 2), false, 2, &w.bias)) return;
      } else {
        w.bias = w.y; /* unused by the shader; any valid binding */
        w.bias.off = 0;
      }
      if (!record(seq, &w, user))
        return;
    }
    if (a->act) {
      /* in place over the chunk's rows (contiguous: y is dense [M, N]) */
      VkrtTensor yc = vkrt_tensor_sub(a->y, m0 * yrow, w.mc * yrow);
      vkrt_eltwise(seq, op, a->act, yc, yc, yc, (uint64_t)w.mc * a->N);
    }
  }
}
