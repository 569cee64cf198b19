/* y = x . w^T (+ bias) (+ y) with an optional activation. Three kernels (shaders/matmul.comp):
 * a register-tiled texel-buffer GEMM, a texel-buffer GEMV for M <= 4, and a storage-buffer
 * fallback for shapes the texel kernels cannot take (K % 8 != 0, operands not 16-byte aligned).
 * Operands larger than one binding are split: rows of x and y into chunks, rows of w (the
 * output columns) into windows. */
#include "ops.h"
#include "op_util.h"
#include "op_eltwise.h"

/* the GEMM tile (TM, TN, WG in matmul.comp; overridable to try variants) */
#ifndef GEMM_TM
#define GEMM_TM 16u
#define GEMM_TN 16u
#define GEMM_WG 16u
#endif
#define GEMV_MAX_M 4u
#define GEMV_ROWS 32u  /* rows of w per workgroup (ROWS_WG in matmul.comp) */
#define GEN_T 4u
#define GEN_WG 8u

enum { FLAG_BIAS = 1, FLAG_ACC = 2 };

#define SMEM_BM 64u
#define SMEM_BN 64u

typedef struct { uint32_t M, N, K, x_off, w_off, y_off, b_off, ldy, flags; } MatmulPush;

static volatile gint forced_gemm = -1;  /* -1: not read from the environment yet */

void vkrt_ops_force_gemm(VkrtGemmKernel kernel)
{
  g_atomic_int_set(&forced_gemm, (gint)kernel);
}

static bool use_shared_gemm(VkrtSeq *seq)
{
  gint k = g_atomic_int_get(&forced_gemm);
  if (k < 0) {
    const char *e = g_getenv("JANUSFLOW_GEMM");
    k = !e ? VKRT_GEMM_AUTO : g_ascii_strcasecmp(e, "shared") == 0 ? VKRT_GEMM_SHARED
      : g_ascii_strcasecmp(e, "register") == 0 ? VKRT_GEMM_REGISTER : VKRT_GEMM_AUTO;
    g_atomic_int_set(&forced_gemm, k);
  }
  if (k == VKRT_GEMM_AUTO) return vkrt_context_info(vkrt_seq_context(seq))->type != VKRT_DEVICE_CPU;
  return k == VKRT_GEMM_SHARED;
}

void vkrt_op_matmul(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                    uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  const char *op = "matmul";
  if ((flags & VKRT_MM_ACCUMULATE) && (flags & (VKRT_MM_GELU | VKRT_MM_SILU))) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "ACCUMULATE cannot be combined with an activation");
    return;
  }
  if ((flags & VKRT_MM_GELU) && (flags & VKRT_MM_SILU)) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "GELU and SILU are exclusive");
    return;
  }
  if (!op_check(seq, op, "y", y, (uint64_t)M * N * 4) || !op_check(seq, op, "x", x, (uint64_t)M * K * 4) ||
      !op_check(seq, op, "w", w, (uint64_t)N * K * 2))
    return;
  bool has_bias = bias.buf != NULL;
  if (has_bias && !op_check(seq, op, "bias", bias, (uint64_t)N * 2)) return;
  if (M == 0 || N == 0) return;
  if (K == 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "K = 0");
    return;
  }
  uint32_t pflags = (has_bias ? FLAG_BIAS : 0) | (flags & VKRT_MM_ACCUMULATE ? FLAG_ACC : 0);
  const char *act = flags & VKRT_MM_GELU ? "eltwise_gelu" : flags & VKRT_MM_SILU ? "eltwise_silu" : NULL;

  /* texel kernels read whole 16-byte texels: 8 weights / 4 activations at a time */
  bool tex = K % 8 == 0 && x.offset % 16 == 0 && w.offset % 16 == 0;
  uint64_t xrow = (uint64_t)K * 4, wrow = (uint64_t)K * 2, yrow = (uint64_t)N * 4;
  uint64_t m_chunk = MIN(op_window_bytes(seq, tex) / xrow, op_window_bytes(seq, false) / yrow);
  uint64_t n_win = op_window_bytes(seq, tex) / wrow;
  if (m_chunk == 0 || n_win == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "rows of %u / %u values exceed the device's binding limit", K, N);
    return;
  }
  for (uint64_t m0 = 0; m0 < M; m0 += m_chunk) {
    uint32_t mc = (uint32_t)MIN(m_chunk, M - m0);
    OpBind bx = { 0 }, by = { 0 };
    if (!op_bind(seq, op, "x", vkrt_tensor_sub(x, m0 * xrow, mc * xrow), tex, tex ? 16 : 4, &bx) ||
        !op_bind(seq, op, "y", vkrt_tensor_sub(y, m0 * yrow, mc * yrow), false, 4, &by))
      return;
    for (uint64_t n0 = 0; n0 < N; n0 += n_win) {
      uint32_t nc = (uint32_t)MIN(n_win, N - n0);
      OpBind bw = { 0 }, bb = { 0 };
      if (!op_bind(seq, op, "w", vkrt_tensor_sub(w, n0 * wrow, nc * wrow), tex, tex ? 16 : 2, &bw)) return;
      if (has_bias) {
        if (!op_bind(seq, op, "bias", vkrt_tensor_sub(bias, n0 * 2, nc * 2), false, 2, &bb)) return;
      } else {
        bb = by; /* unused by the shader; any valid binding */
        bb.off = 0;
      }
      MatmulPush push = { mc, nc, K, bx.off, bw.off, (uint32_t)(by.off + n0), bb.off, N, pflags };
      VkrtDispatch d = {
        .n_bindings = 4,
        .bindings = { by.bind, bx.bind, bw.bind, bb.bind },
        .push = &push,
        .push_size = sizeof push,
        .flops = 2ull * mc * nc * K,
      };
      if (tex && mc <= GEMV_MAX_M && vkrt_context_info(vkrt_seq_context(seq))->has_subgroup_arith) {
        d.shader = "matmul_gemv";
        d.texel_mask = 0x6;
        d.spec[0] = mc;
        d.n_spec = 1;
        vkrt_groups_linear((nc + GEMV_ROWS - 1) / GEMV_ROWS, d.groups);
      } else if (tex && use_shared_gemm(seq)) {
        d.shader = "matmul_gemm_smem";
        d.texel_mask = 0x6;
        d.groups[0] = (nc + SMEM_BN - 1) / SMEM_BN;
        d.groups[1] = (mc + SMEM_BM - 1) / SMEM_BM;
        d.groups[2] = 1;
      } else if (tex) {
        d.shader = "matmul_gemm";
        d.texel_mask = 0x6;
        d.groups[0] = (nc + GEMM_TN * GEMM_WG - 1) / (GEMM_TN * GEMM_WG);
        d.groups[1] = (mc + GEMM_TM - 1) / GEMM_TM;
        d.groups[2] = 1;
      } else {
        d.shader = "matmul_generic";
        d.groups[0] = (nc + GEN_T * GEN_WG - 1) / (GEN_T * GEN_WG);
        d.groups[1] = (mc + GEN_T * GEN_WG - 1) / (GEN_T * GEN_WG);
        d.groups[2] = 1;
      }
      if (d.groups[0] > 65535 || d.groups[1] > 65535) {
        op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "M = %u, N = %u is too large for one dispatch", M, N);
        return;
      }
      vkrt_seq_dispatch(seq, &d);
    }
    if (act) {
      /* in place over the chunk's rows (contiguous: y is dense [M, N]) */
      VkrtTensor yc = vkrt_tensor_sub(y, m0 * yrow, mc * yrow);
      vkrt_eltwise(seq, op, act, yc, yc, yc, (uint64_t)mc * N);
    }
  }
}
