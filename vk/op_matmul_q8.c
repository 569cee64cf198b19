/* y = x . dequant(wq)^T (+ bias) (+ y) with Q8_0 weights (quant.h), kernels in
 * shaders/matmul_q8.comp. Mirrors vkrt_op_matmul: the same flags, activations as a following
 * eltwise pass, rows of x/y in chunks and rows of the weight (quants and scales alike) in windows
 * when they exceed one binding. */
#include "quant.h"
#include "op_matmul_internal.h"

/* tiles of matmul_q8.comp */
#define Q8_TM 16u
#define Q8_TN 16u
#define Q8_WG 16u
#define Q8_SMEM_B 64u   /* fixed in the shader (no specialization constants, unlike matmul.comp's) */
#define Q8_GEMV_MAX_M 4u
#define Q8_GEN_T 4u
#define Q8_GEN_WG 8u

typedef struct { uint32_t M, N, K, x_off, q_off, s_off, y_off, b_off, ldy, sk, flags; } Q8Push;

/* The kernel choice of vkrt_op_matmul (op_matmul_kernel: vkrt_ops_force_gemm, else
 * JANUSFLOW_GEMM): AUTO takes the shared-memory kernel on GPUs and the register-tiled texel
 * kernel on CPU devices, REGISTER and SHARED force one. There is no Q8 form of the fp16-emulating
 * or cooperative-matrix kernels: SHARED_F16EMU and COOPMAT take the shared-memory kernel. */
static bool use_shared_gemm(VkrtSeq *seq)
{
  switch (op_matmul_kernel()) {
  case VKRT_GEMM_REGISTER:
    return false;
  case VKRT_GEMM_SHARED:
  case VKRT_GEMM_SHARED_F16EMU:
  case VKRT_GEMM_COOPMAT:
    return true;
  case VKRT_GEMM_AUTO:
  default:
    return vkrt_context_info(vkrt_seq_context(seq))->type != VKRT_DEVICE_CPU;
  }
}

typedef struct {
  uint32_t M, N, K, sk, pflags;
  bool tex;
} Q8Job;

static gboolean q8_record(VkrtSeq *seq, const OpMatmulWindow *win, void *user)
{
  const Q8Job *j = user;
  const char *op = "matmul_q8";
  uint32_t mc = win->mc, nc = win->nc;
  Q8Push push = { mc, nc, j->K, win->x.off, win->w[0].off, win->w[1].off, (uint32_t)(win->y.off + win->n0),
                  win->bias.off, j->N, j->sk, j->pflags };
  VkrtDispatch d = {
    .n_bindings = 5,
    .bindings = { win->y.bind, win->x.bind, win->w[0].bind, win->w[1].bind, win->bias.bind },
    .push = &push,
    .push_size = sizeof push,
    .flops = 2ull * mc * nc * j->K,
  };
  if (j->tex && mc <= Q8_GEMV_MAX_M && vkrt_context_info(vkrt_seq_context(seq))->has_subgroup_arith) {
    d.shader = "matmul_q8_gemv";
    d.texel_mask = 0xe;
    d.spec[0] = mc;
    d.spec[1] = vkrt_ops_gemv_rows(vkrt_context_info(vkrt_seq_context(seq)));
    d.n_spec = 2;
    vkrt_groups_linear((nc + d.spec[1] - 1) / d.spec[1], d.groups);
  } else if (j->tex && use_shared_gemm(seq)) {
    d.shader = "matmul_q8_gemm_smem";
    d.texel_mask = 0xe;
    d.groups[0] = (nc + Q8_SMEM_B - 1) / Q8_SMEM_B;
    d.groups[1] = (mc + Q8_SMEM_B - 1) / Q8_SMEM_B;
    d.groups[2] = 1;
  } else if (j->tex) {
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
  if (d.groups[0] > 65535 || d.groups[1] > 65535)
    return op_fail(seq, VKRT_ERROR_UNSUPPORTED, op, "M = %u, N = %u is too large for one dispatch", j->M, j->N);
  vkrt_seq_dispatch(seq, &d);
  return TRUE;
}

void vkrt_op_matmul_q8(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor wq, VkrtTensor bias,
                       uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  const char *op = "matmul_q8";
  if (!op_matmul_check_flags(seq, op, flags))
    return;
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

  /* texel kernels read x in whole 16-byte texels; the quants and scales always can be */
  const bool tex = x.offset % 16 == 0;
  const uint32_t sk = vkrt_quant_q8_0_scale_stride(K);
  const uint32_t unit = tex ? 16 : 4;
  OpMatmulArgs a = {
    .op = op, .y = y, .x = x, .bias = bias, .M = M, .N = N, .K = K, .tex = tex,
    .n_w = 2,
    .w = { { "w quants", wq, K, unit },
           { "w scales", vkrt_tensor_sub(wq, vkrt_quant_q8_0_scales_offset(N, K), 0), (uint64_t)sk * 4, unit } },
    .act = op_matmul_activation(flags),
  };
  Q8Job j = { M, N, K, sk, op_matmul_push_flags(flags, has_bias), tex };
  op_matmul_windows(seq, &a, q8_record, &j);
}
