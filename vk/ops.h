/* The op library: one C wrapper per op (vk/op_*.c), one GLSL file per op family (shaders/), one
 * plain-C reference per op (tests/ref_ops.c). Ops record into a VkrtSeq; they never submit.
 *
 * Conventions (all ops):
 *  - activations are fp32, row-major, densely packed unless a stride is given;
 *  - weights are bf16 (uint16 bit patterns, the high half of an fp32), row-major as in PyTorch:
 *    a Linear weight is [N out, K in]; a bias is bf16 [N];
 *  - sizes are in elements; tensors larger than the device's maximum storage-buffer range are
 *    split or bound in windows by the wrapper, invisibly to the caller;
 *  - every op adds its FLOPs (2 per multiply-add) to the context counter.
 */
#pragma once

#include "vkrt.h"

G_BEGIN_DECLS

/* y[M,N] = x[M,K] · w[N,K]^T (+ bias[N]) (+ y if VKRT_MM_ACCUMULATE). fp32 accumulation.
 * Picks a GEMV path for small M and a tiled GEMM path otherwise. */
enum {
  VKRT_MM_ACCUMULATE = 1 << 0,  /* y += result (fused residual add) */
  VKRT_MM_GELU = 1 << 1,        /* y = gelu_erf(result) (not with ACCUMULATE) */
  VKRT_MM_SILU = 1 << 2,        /* y = silu(result) (not with ACCUMULATE) */
};
void vkrt_op_matmul(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                    uint32_t M, uint32_t N, uint32_t K, uint32_t flags);

/* The GEMM kernel: AUTO picks the register-tiled texel kernel on CPU devices (lavapipe) and the
 * shared-memory tiled kernel on GPUs. Tests and benchmarks may force one (process-wide); the
 * environment variable JANUSFLOW_GEMM=register|shared does the same. */
typedef enum { VKRT_GEMM_AUTO, VKRT_GEMM_REGISTER, VKRT_GEMM_SHARED } VkrtGemmKernel;
void vkrt_ops_force_gemm(VkrtGemmKernel kernel);

/* y[n, dim] = float(table[ids[i], :]) for a bf16 table [vocab, dim]; ids are int32. Ids outside
 * [0, vocab) give a zero row. */
void vkrt_op_embed(VkrtSeq *seq, VkrtTensor y, VkrtTensor table, VkrtTensor ids,
                   uint32_t n, uint32_t dim, uint32_t vocab);

/* y[r,:] = x[r,:] / sqrt(mean(x[r,:]^2) + eps) * w   (w bf16 [dim]; statistics in fp32). y may be x. */
void vkrt_op_rmsnorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w,
                     uint32_t rows, uint32_t dim, float eps);

/* In-place rotary embedding, HF rotate-half layout, on x viewed as [rows, row_stride] where the
 * first n_heads*head_dim values of each row are heads of head_dim: for i < head_dim/2,
 * (a, b) = (x[i], x[i + head_dim/2]); x[i] = a cos - b sin; x[i + head_dim/2] = b cos + a sin,
 * angle = pos[r] * theta^(-2i/head_dim). pos is int32 [rows]. */
void vkrt_op_rope(VkrtSeq *seq, VkrtTensor x, VkrtTensor pos, uint32_t rows, uint32_t row_stride,
                  uint32_t n_heads, uint32_t head_dim, float theta);

typedef struct {
  uint32_t n_batch;      /* B: independent sequences */
  uint32_t n_q;          /* queries per sequence */
  uint32_t n_heads, head_dim;
  uint32_t q_start;      /* cache index of the first query (causal: query i sees keys j <= q_start + i) */
  uint32_t n_kv;         /* keys 0..n_kv-1 of each sequence are read */
  uint32_t kv_capacity;  /* rows per sequence in the K/V buffers */
  bool causal;
  float scale;           /* usually 1/sqrt(head_dim) */
} VkrtAttnParams;

/* out[B*n_q, H*D] = softmax(q k^T * scale + mask) v per head, online softmax in fp32; never
 * materialises a score matrix in device memory.
 * q [B*n_q, H*D]; k, v [B, kv_capacity, H*D]; mask: none, or int32 [B, kv_capacity] with
 * 0 = key hidden for that sequence. A query that sees no key gets zeros. */
void vkrt_op_attention(VkrtSeq *seq, VkrtTensor out, VkrtTensor q, VkrtTensor k, VkrtTensor v,
                       VkrtTensor mask, const VkrtAttnParams *p);
/* With few queries (decode) on a GPU, attention spreads each query's keys over a subgroup; on
 * CPU devices it does not (no gain there). Tests may force it: -1 auto, 0 never, 1 always when
 * there are few queries (process-wide). */
void vkrt_ops_force_attention_split(int mode);

/* y[i] = silu(gate[i]) * up[i] for n elements. */
void vkrt_op_silu_mul(VkrtSeq *seq, VkrtTensor y, VkrtTensor gate, VkrtTensor up, uint32_t n);

/* y[i] = a[i] + b[i] for n elements (y may alias a or b). */
void vkrt_op_add(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b, uint32_t n);

/* out[r] = argmax_j x[r, j] (uint32; the lowest index wins a tie) for rows x [rows, n]. */
void vkrt_op_argmax(VkrtSeq *seq, VkrtTensor out, VkrtTensor x, uint32_t rows, uint32_t n);

/* The k largest values of x[n] in descending order (ties: lower index first):
 * out_val float [k], out_idx uint32 [k]. 1 <= k <= 256. */
void vkrt_op_topk(VkrtSeq *seq, VkrtTensor out_val, VkrtTensor out_idx, VkrtTensor x,
                  uint32_t n, uint32_t k);

G_END_DECLS
