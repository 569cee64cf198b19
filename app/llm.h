/* llm: the DeepSeek-LLM (LLaMA architecture) backbone on Vulkan: embeddings, pre-norm decoder
 * layers with RoPE attention over a KV cache, SwiGLU MLP, final RMSNorm, lm_head.
 *
 * Ownership: JfLlm owns the layer weights and its scratch buffers; a JfKvCache belongs to whoever
 * created it (a chat session, a generation run) and must be freed before the JfLlm. Recording
 * functions append work to a VkrtSeq and never submit. */
#pragma once
#include "config.h"
#include "safetensors.h"
#include "vkrt.h"

G_BEGIN_DECLS

typedef struct JfLlm JfLlm;
typedef struct JfKvCache JfKvCache;

/* How the Linear weights live on the device. Q8_0 (vk/quant.h) quantizes the Linear weights of
 * the decoder layers (q/k/v/o, gate/up/down) and lm_head at load time, about 56% of their bf16
 * size; embeddings and norms stay bf16, and so does any Linear whose input size is not a
 * multiple of 32. */
typedef enum { JF_WEIGHTS_BF16, JF_WEIGHTS_Q8_0 } JfWeightFormat;

/* "bf16" / "q8_0" (the CLI's --weights values). */
const char *llm_weight_format_name(JfWeightFormat wf);
gboolean llm_weight_format_parse(const char *s, JfWeightFormat *out, GError **error);

/* Device bytes checkpoint tensor t takes when the LLM is loaded with weight format wf (0 for a
 * tensor that is not the LLM's): what model_load's fit check adds up. */
uint64_t llm_tensor_device_bytes(const StTensor *t, JfWeightFormat wf);

JfLlm *llm_new(VkrtContext *ctx, const StFile *f, const JfLlmConfig *cfg, JfWeightFormat wf, GError **error);
void llm_free(JfLlm *llm);
const JfLlmConfig *llm_config(const JfLlm *llm);
/* Device bytes held by the weights. */
uint64_t llm_weight_bytes(const JfLlm *llm);
JfWeightFormat llm_weight_format(const JfLlm *llm);

/* How a K/V cache stores its values. The attention math is fp32 either way; fp16 halves the
 * cache's memory and what decode streams per token, at a rounding of each stored K and V value
 * (relative 2^-11). */
typedef enum { JF_KV_F32, JF_KV_F16 } JfKvFormat;

/* "f32" / "f16" (the JANUSFLOW_KV values). */
const char *llm_kv_format_name(JfKvFormat f);
/* The format a new cache for heads of head_dim gets on a device of this type: fp16 on GPUs, fp32
 * on CPU devices (lavapipe: there the fp32 cache is what every golden test was made with);
 * JANUSFLOW_KV=f16|f32 (read at the first call) or llm_force_kv_format() override that (other
 * values of the variable are ignored). A head size the fp16 kernels cannot take (not a multiple of 8, or above 256:
 * vkrt_attention_kv_f16_ok) gets fp32 whatever was asked. */
JfKvFormat llm_kv_format_for(VkrtDeviceType type, uint32_t head_dim);
/* Tests: 0 fp32, 1 fp16, -1 the device type's choice (JANUSFLOW_KV is then no longer read).
 * Process-wide; applies to caches created afterwards. */
void llm_force_kv_format(int mode);
/* Device bytes of a cache of n_layers layers of kv_dim (n_kv_heads * head_dim) values per K and
 * per V row, for n_batch x capacity rows. */
uint64_t llm_kv_bytes_for(uint32_t n_layers, uint32_t kv_dim, JfKvFormat f, uint32_t n_batch, uint32_t capacity);

/* K/V for n_batch independent sequences of up to capacity positions each, in the format
 * llm_kv_format_for gives this device and head size. */
JfKvCache *llm_kv_new(JfLlm *llm, uint32_t n_batch, uint32_t capacity, GError **error);
void llm_kv_free(JfKvCache *kv);
uint32_t llm_kv_capacity(const JfKvCache *kv);
uint32_t llm_kv_batch(const JfKvCache *kv);
JfKvFormat llm_kv_format(const JfKvCache *kv);
/* Device bytes the cache holds (every layer's K and V). */
uint64_t llm_kv_bytes(const JfKvCache *kv);

/* Largest number of rows (n_batch * n_tokens) one llm_record_forward call may take; callers
 * split longer prompts into chunks. */
uint32_t llm_max_rows(const JfLlm *llm);

/* out[n, hidden] = fp32 embedding rows of ids (int32 device buffer [n]). */
void llm_record_embed(JfLlm *llm, VkrtSeq *seq, VkrtTensor ids, uint32_t n, VkrtTensor out);

/* One forward pass over n_tokens new tokens of each of kv's sequences, written at cache indices
 * start..start+n_tokens-1.
 *   x    [n_batch * n_tokens, hidden] fp32 input embeddings, sequence-major; used as the residual
 *        stream, so it is overwritten;
 *   pos  int32 [n_batch * n_tokens] RoPE position ids (need not equal the cache indices);
 *   mask none, or int32 [n_batch, capacity] key mask (0 = hidden), combined with causality;
 *   out  [n_batch * n_tokens, hidden] hidden states after the final RMSNorm (may be x).
 * Returns FALSE (and records nothing) if the sizes do not fit; the error says why. */
gboolean llm_record_forward(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor x, VkrtTensor pos,
                            VkrtTensor mask, uint32_t n_tokens, uint32_t start, VkrtTensor out,
                            GError **error);

/* One decode step's pass: the token whose id is ids[0] at cache position `at` (its position
 * value in pos[0]; both int32 device buffers the caller writes before the submit), embedded into
 * x (one row) and through every layer into out (may be x). Nothing recorded depends on the id,
 * so the step can be recorded before the id is known. FALSE as llm_record_forward. */
gboolean llm_record_token(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor ids, VkrtTensor pos, uint32_t at,
                          VkrtTensor x, VkrtTensor out, GError **error);

/* The same pass split in pieces, so that a long pass can be submitted in several parts (driver
 * watchdogs, prompt cancellation): layers [l0, l1) on the residual stream x, then the final norm. */
gboolean llm_record_layers(JfLlm *llm, VkrtSeq *seq, JfKvCache *kv, VkrtTensor x, VkrtTensor pos,
                           VkrtTensor mask, uint32_t n_tokens, uint32_t start, int l0, int l1,
                           GError **error);
void llm_record_final_norm(JfLlm *llm, VkrtSeq *seq, VkrtTensor x, uint32_t rows, VkrtTensor out);
int llm_n_layers(const JfLlm *llm);

/* Records a copy of the K/V of cache rows [0, n) of sequence src_seq of src into sequence
 * dst_seq of dst, every layer (a prompt prefix computed once, shared by several sequences). */
void llm_copy_prefix(JfLlm *llm, VkrtSeq *seq, JfKvCache *dst, uint32_t dst_seq, const JfKvCache *src,
                     uint32_t src_seq, uint32_t n);

/* logits[rows, vocab] = lm_head(normed[rows, hidden]). */
void llm_record_logits(JfLlm *llm, VkrtSeq *seq, VkrtTensor normed, uint32_t rows, VkrtTensor logits);

G_END_DECLS
