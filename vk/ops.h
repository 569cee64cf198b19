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
typedef enum { VKRT_GEMM_AUTO, VKRT_GEMM_REGISTER, VKRT_GEMM_SHARED,
               /* gpu helper: */
               VKRT_GEMM_SHARED_F16EMU,  /* the shared-memory kernel rounding its operands to fp16 as
                                          * the coopmat kernel does (tests; JANUSFLOW_GEMM=shared-f16) */
               VKRT_GEMM_COOPMAT         /* cooperative matrices wherever they passed their self-check,
                                          * else AUTO (JANUSFLOW_GEMM=coopmat) */
} VkrtGemmKernel;
void vkrt_ops_force_gemm(VkrtGemmKernel kernel);

/* --- GPU kernel selection (gpu helper) --- */
/* The shared-memory GEMM's tile: BM x BN outputs per workgroup of (BM/TM) x (BN/TN) threads,
 * k steps of BK (specialization constants of matmul_gemm_smem). */
typedef struct { uint32_t bm, bn, bk, tm, tn; } VkrtGemmTile;
/* The tile chosen for this device and an M x N output (reasons in vk/op_matmul.c). */
void vkrt_ops_gemm_tile(const VkrtDeviceInfo *info, uint32_t M, uint32_t N, VkrtGemmTile *tile);
/* Tests: use this tile whatever the device (NULL: back to the per-device choice). A tile the
 * device cannot run makes the op fail with VKRT_ERROR_UNSUPPORTED. Process-wide. */
void vkrt_ops_force_gemm_tile(const VkrtGemmTile *tile);
/* Rows of w per workgroup of the GEMV kernels (M <= 4: decode), bf16 and 8-bit: 32 on CPU
 * devices, one group of 4 rows per subgroup of a 64-invocation workgroup on GPUs. Tests may force
 * a multiple of 4 (0: per device again). Process-wide. */
uint32_t vkrt_ops_gemv_rows(const VkrtDeviceInfo *info);
void vkrt_ops_force_gemv_rows(uint32_t rows);
/* The kernel an M-row GEMM with aligned operands gets on this context: "gemv", "register",
 * "shared", "shared-f16", "coopmat" or "generic" (may run the coopmat self-check). */
const char *vkrt_ops_gemm_path(VkrtContext *ctx, uint32_t M, uint32_t K);
/* Whether the cooperative-matrix GEMM (shaders/matmul_coop.comp; devices with
 * VK_KHR_ or VK_NV_cooperative_matrix) is used on this context. The first call on a context runs its
 * self-check: a 37x100x64 GEMM through it and through the fp32 kernel, compared with a
 * double-precision reference; on any failure the path stays off for the context and a
 * g_message says so once. JANUSFLOW_COOPMAT=0 turns it off. *note (owned by the context or
 * the library): why. */
bool vkrt_ops_coopmat_usable(VkrtContext *ctx, const char **note);
/* Tests, on devices without cooperative matrices: pretend there are some. EMULATE: the
 * fp16-emulating shared-memory kernel stands in for matmul_coop.comp (the self-check passes);
 * BROKEN: its pipeline cannot be built; MISMATCH: the self-check's tolerance is 0. The state
 * of the stand-in is process-wide and starts over at every call. */
typedef enum { VKRT_COOPMAT_TEST_OFF, VKRT_COOPMAT_TEST_EMULATE, VKRT_COOPMAT_TEST_BROKEN,
               VKRT_COOPMAT_TEST_MISMATCH } VkrtCoopmatTest;
void vkrt_ops_coopmat_test_mode(VkrtCoopmatTest mode);

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
  uint32_t n_kv_heads;   /* heads in k and v (grouped-query attention), dividing n_heads; 0: n_heads */
  /* Optional fp32 work space, 16-byte aligned: with it, CPU devices run sequences of >= 16
   * queries as two GEMMs and a softmax over a score matrix kept here (attn_gemm.comp), in
   * chunks of query rows that fit it, and GPUs run decode at long contexts split over chunks of
   * keys with partial results kept here (SPLITK); vkrt_ops_attention_scratch_bytes() says how
   * much it is worth. None: the online kernel (decode: its subgroup-split form on GPUs). */
  VkrtTensor scratch;
  /* K and V hold fp16 values (the LLM's fp16 K/V cache: two per 32-bit word, the first in the
   * low half, as vkrt_op_f32_to_f16 writes them), read as such by every kernel; the math stays
   * fp32. Needs head_dim % 8 == 0 and head_dim <= 256 (vkrt_attention_kv_f16_ok): the op fails
   * otherwise. */
  bool kv_f16;
} VkrtAttnParams;

/* The head sizes vkrt_op_attention takes. Whole vec4s up to 256 take the texel kernels (their
 * register/shared budget); other sizes a slower storage-buffer kernel (per-invocation arrays of
 * 2 x head_dim floats, hence a bound). */
#define VKRT_ATTN_MAX_HEAD_DIM 1024u
#define VKRT_ATTN_MAX_TEXEL_HEAD_DIM 256u
static inline bool vkrt_attention_head_dim_ok(uint32_t d)
{
  return d > 0 && d <= VKRT_ATTN_MAX_HEAD_DIM;
}
/* The head sizes fp16 K/V (kv_f16) takes: whole texels of 8 halves, in the texel kernels. */
static inline bool vkrt_attention_kv_f16_ok(uint32_t d)
{
  return d > 0 && d % 8 == 0 && d <= VKRT_ATTN_MAX_TEXEL_HEAD_DIM;
}

/* out[B*n_q, H*D] = softmax(q k^T * scale + mask) v per head in fp32: online softmax (no score
 * matrix in device memory), or on CPU devices with p->scratch, scores chunked through it.
 * q [B*n_q, H*D]; k, v [B, kv_capacity, HK*D], fp32 or (p->kv_f16) fp16 (HK = n_kv_heads; query
 * head h reads K/V head h / (H / HK)); mask: none, or int32 [B, kv_capacity] with 0 = key hidden
 * for that sequence. A query that sees no key gets zeros. */
void vkrt_op_attention(VkrtSeq *seq, VkrtTensor out, VkrtTensor q, VkrtTensor k, VkrtTensor v,
                       VkrtTensor mask, const VkrtAttnParams *p);
/* With few queries (decode) on a GPU, attention spreads each query's keys over a subgroup; on
 * CPU devices it does not (no gain there). Tests may force it: -1 auto, 0 never, 1 always when
 * there are few queries (process-wide). */
void vkrt_ops_force_attention_split(int mode);
/* Flash attention (shaders/flash_attn.comp: blocks of queries per workgroup, K/V tiles in
 * shared memory) is used on GPUs when a sequence has >= 16 queries (prefill, the image block).
 * -1 auto, 0 never, 1 always (any n_q, any device); JANUSFLOW_ATTENTION=flash|online does the
 * same as 1|0. Process-wide. */
void vkrt_ops_force_attention_flash(int mode);
/* The GEMM form (scratch given, >= 16 queries) is used on CPU devices. -1 auto, 0 never, 1 for
 * any n_q on any device when scratch is given; JANUSFLOW_ATTENTION=gemm does the same as 1,
 * =online or =flash as 0. Process-wide. */
void vkrt_ops_force_attention_gemm(int mode);
/* Split-K decode ("flash decoding", SPLITK): where the subgroup-split kernel runs (few queries,
 * a GPU) and a scratch is given, a context of more than 2 chunks of 256 keys is cut into chunks,
 * a subgroup each, whose partial softmaxes a second pass combines; fewer, larger chunks where
 * the scratch is small. -1 auto, 0 never, 1 always when a scratch is given and there are few
 * queries (any n_kv, any device with subgroup arithmetic); JANUSFLOW_ATTENTION=splitk does the
 * same as 1, =online as 0. Process-wide. */
void vkrt_ops_force_attention_splitk(int mode);
/* Tests: keys per SPLITK chunk before the scratch limits it (0 = JANUSFLOW_SPLITK_CHUNK if set,
 * else 256). Process-wide. */
void vkrt_ops_force_splitk_chunk(uint32_t keys);
/* Scratch bytes worth giving vkrt_op_attention on this context (0 where neither the GEMM nor
 * the SPLITK form is used): CPU devices, enough for a 577-token image block of 16 heads in one
 * GEMM chunk (longer ones chunk); GPUs, the SPLITK partials of 16 heads x 4 queries x 64 chunks
 * at head_dim 128 twice over. */
#define VKRT_ATTN_SCRATCH_BYTES (32ull << 20)
#define VKRT_ATTN_SPLITK_SCRATCH_BYTES (4ull << 20)
uint64_t vkrt_ops_attention_scratch_bytes(VkrtContext *ctx);
/* Scratch bytes one query row takes in the GEMM form, for n_seq_heads (sequences x heads) over
 * n_kv keys (its scores, padded, and a softmax sum): a caller with a known shape needs at most
 * n_q times this. */
uint64_t vkrt_ops_attention_scratch_row_bytes(uint64_t n_seq_heads, uint32_t n_kv);
/* The attention kernel n_q queries per sequence of heads of head_dim get on this context, given
 * vkrt_ops_attention_scratch_bytes() of scratch, over a 4096-key context: "gemm", "flash",
 * "splitk", "split", "online" or "scalar" (head sizes that are not a multiple of 4 or above 256). */
const char *vkrt_ops_attention_path(VkrtContext *ctx, uint32_t n_q, uint32_t n_seq_heads, uint32_t head_dim);
/* The same for a device described by di, n_kv keys and scratch_bytes of scratch (0: none). */
const char *vkrt_ops_attention_path_for(const VkrtDeviceInfo *di, uint32_t n_q, uint32_t n_seq_heads,
                                        uint32_t head_dim, uint32_t n_kv, uint64_t scratch_bytes);
/* Tests: the flash kernel's query block, key tile and workgroup size (0 = per device). */
void vkrt_ops_force_flash_blocks(uint32_t br, uint32_t bc, uint32_t wg);

/* dst = fp16(src) for n fp32 values (n even), two halves per 32-bit word, the first in the low
 * half: round to nearest even, computed in integers so that it is the same on every device;
 * magnitudes of 65520 and more become +-inf (a model's K/V are far below that), NaN stays NaN,
 * values under 2^-24 become subnormals or +-0. dst and src start on 4-byte boundaries. */
void vkrt_op_f32_to_f16(VkrtSeq *seq, VkrtTensor dst, VkrtTensor src, uint64_t n);
/* Two such conversions of n values each in one dispatch (a layer's new K and V rows). */
void vkrt_op_f32_to_f16_pair(VkrtSeq *seq, VkrtTensor dst_a, VkrtTensor src_a, VkrtTensor dst_b, VkrtTensor src_b,
                             uint64_t n);

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
