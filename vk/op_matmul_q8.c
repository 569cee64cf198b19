/* y = x . dequant(wq)^T (+ bias) (+ y) with Q8_0 weights (quant.h), kernels in
 * shaders/matmul_q8.comp. Mirrors vkrt_op_matmul: the same flags, activations as a following
 * eltwise pass, rows of x/y in chunks and rows of the weight (quants and scales alike) in windows
 * when they exceed one binding. */
#include "quant.h"
#include "ops.h"
#include "op_util.h"
#include "op_eltwise.h"

/* tiles of matmul_q8.comp */
#define Q8_TM 16u
#define Q8_TN 16u
#define Q8_WG 16u
#define Q8_SMEM_B 64u
#define Q8_GEMV_MAX_M 4u
#define Q8_GEMV_ROWS 32u
#define Q8_GEN_T 4u
#define Q8_GEN_WG 8u

enum { FLAG_BIAS = 1, FLAG_ACC = 2 };

typedef struct { uint32_t M, N, K, x_off, q_off, s_off, y_off, b_off, ldy, sk, flags; } Q8Push;

/* The same choice as vkrt_op_matmul's GEMM: shared-memory kernel on GPUs, register-tiled texel
 * kernel on CPU devices; JANUSFLOW_GEMM=register|shared forces one. */
static bool use_shared_gemm(VkrtSeq *seq)
{
  const char *e = g_getenv("JANUSFLOW_GEMM");
  if (e && g_ascii_strcasecmp(e, "shared") == 0) return true;
  if (e && g_ascii_strcasecmp(e, "register") == 0) return false;
  return vkrt_context_info(vkrt_seq_context(seq))->type != VKRT_DEVICE_CPU;
}

void vkrt_op_matmul_q8(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor wq, VkrtTensor bias,
                       uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  const char *op = "matmul_q8";
  if ((flags & VKRT_MM_ACCUMULATE) && (flags & (VKRT_MM_GELU | VKRT_MM_SILU))) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "ACCUMULATE cannot be combined with an activation");
    return;
  }
  if ((flags & VKRT_MM_GELU) && (flags & VKRT_MM_SILU)) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "GELU and SILU are exclusive");
    return;
  }
  if (K == 0 || K % VKRT_Q8_BLOCK != 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "K = %u is not a positive multiple of %u", K, VKRT_Q8_BLOCK);
    return;
  }
  if (wq.offset % 16 != 0) {
    op_fail(seq, VKRT_ERROR_FAILED, op, "the quantized weight must start 16-byte aligned");
    return;
  }
  if (!op_check(seq, op, "y", y, (uint64_t)M * N * 4) || !op_check(seq, op, "x", x, (uint64_t)M * K * 4) ||
      !op_check(seq, op, "w", wq, vkrt_quant_q8_0_bytes(N, K)))
    return;
  bool has_bias = bias.buf != NULL;
  if (has_bias && !op_check(seq, op, "bias", bias, (uint64_t)N * 2)) return;
  if (M == 0 || N == 0) return;
  uint32_t pflags = (has_bias ? FLAG_BIAS : 0) | (flags & VKRT_MM_ACCUMULATE ? FLAG_ACC : 0);
  const char *act = flags & VKRT_MM_GELU ? "eltwise_gelu" : flags & VKRT_MM_SILU ? "eltwise_silu" : NULL;

  /* texel kernels read x in whole 16-byte texels; the quants and scales always can be */
  const bool tex = x.offset % 16 == 0;
  const uint32_t sk = vkrt_quant_q8_0_scale_stride(K);
  const uint64_t xrow = (uint64_t)K * 4, yrow = (uint64_t)N * 4, qrow = K, srow = (uint64_t)sk * 4;
  const uint64_t s_base = vkrt_quant_q8_0_scales_offset(N, K);
  uint64_t m_chunk = MIN(op_window_bytes(seq, tex) / xrow, op_window_bytes(seq, false) / yrow);
  uint64_t n_win = MIN(op_window_bytes(seq, tex) / qrow, op_window_bytes(seq, tex) / srow);
  if (m_chunk == 0 || n_win == 0) {
    op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "rows of %u / %u values exceed the device's binding limit", K, N);
    return;
  }
  const uint32_t unit = tex ? 16 : 4;
  for (uint64_t m0 = 0; m0 < M; m0 += m_chunk) {
    uint32_t mc = (uint32_t)MIN(m_chunk, M - m0);
    OpBind bx = { 0 }, by = { 0 };
    if (!op_bind(seq, op, "x", vkrt_tensor_sub(x, m0 * xrow, mc * xrow), tex, unit, &bx) ||
        !op_bind(seq, op, "y", vkrt_tensor_sub(y, m0 * yrow, mc * yrow), false, 4, &by))
      return;
    for (uint64_t n0 = 0; n0 < N; n0 += n_win) {
      uint32_t nc = (uint32_t)MIN(n_win, N - n0);
      OpBind bq = { 0 }, bs = { 0 }, bb = { 0 };
      if (!op_bind(seq, op, "w quants", vkrt_tensor_sub(wq, n0 * qrow, nc * qrow), tex, unit, &bq) ||
          !op_bind(seq, op, "w scales", vkrt_tensor_sub(wq, s_base + n0 * srow, nc * srow), tex, unit, &bs))
        return;
      if (has_bias) {
        if (!op_bind(seq, op, "bias", vkrt_tensor_sub(bias, n0 * 2, nc * 2), false, 2, &bb)) return;
      } else {
        bb = by; /* unused by the shader; any valid binding */
        bb.off = 0;
      }
      Q8Push push = { mc, nc, K, bx.off, bq.off, bs.off, (uint32_t)(by.off + n0), bb.off, N, sk, pflags };
      VkrtDispatch d = {
        .n_bindings = 5,
        .bindings = { by.bind, bx.bind, bq.bind, bs.bind, bb.bind },
        .push = &push,
        .push_size = sizeof push,
        .flops = 2ull * mc * nc * K,
      };
      if (tex && mc <= Q8_GEMV_MAX_M && vkrt_context_info(vkrt_seq_context(seq))->has_subgroup_arith) {
        d.shader = "matmul_q8_gemv";
        d.texel_mask = 0xe;
        d.spec[0] = mc;
        d.n_spec = 1;
        vkrt_groups_linear((nc + Q8_GEMV_ROWS - 1) / Q8_GEMV_ROWS, d.groups);
      } else if (tex && use_shared_gemm(seq)) {
        d.shader = "matmul_q8_gemm_smem";
        d.texel_mask = 0xe;
        d.groups[0] = (nc + Q8_SMEM_B - 1) / Q8_SMEM_B;
        d.groups[1] = (mc + Q8_SMEM_B - 1) / Q8_SMEM_B;
        d.groups[2] = 1;
      } else if (tex) {
        d.shader = "matmul_q8_gemm";
        d.texel_mask = 0xe;
        d.groups[0] = (nc + Q8_TN * Q8_WG - 1) / (Q8_TN * Q8_WG);
        d.groups[1] = (mc + Q8_TM - 1) / Q8_TM;
        d.groups[2] = 1;
      } else {
        d.shader = "matmul_q8_generic";
        d.groups[0] = (nc + Q8_GEN_T * Q8_GEN_WG - 1) / (Q8_GEN_T * Q8_GEN_WG);
        d.groups[1] = (mc + Q8_GEN_T * Q8_GEN_WG - 1) / (Q8_GEN_T * Q8_GEN_WG);
        d.groups[2] = 1;
      }
      if (d.groups[0] > 65535 || d.groups[1] > 65535) {
        op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "M = %u, N = %u is too large for one dispatch", M, N);
        return;
      }
      vkrt_seq_dispatch(seq, &d);
    }
    if (act) {
      VkrtTensor yc = vkrt_tensor_sub(y, m0 * yrow, mc * yrow);
      vkrt_eltwise(seq, op, act, yc, yc, yc, (uint64_t)mc * N);
    }
  }
}
