/* bench_cost: the work each benchmarked stage must do at least, computed from the model's
 * shapes alone (config + tensor shapes), never from what the engine dispatches: the bench puts
 * it next to the FLOPs the op layer counted, and tests/test_flops.c checks that the engine does
 * not exceed it.
 *
 * FLOPs are 2 per multiply-add of every Linear, convolution and attention product (q.k and p.v
 * over the keys each query sees causally, masked keys included, as the reference bench counts);
 * norms and element-wise work are not counted. Minimum bytes are what the stage must read at
 * least: every weight it uses once (bf16, as the engine stores them), the K/V it attends to
 * (in the cache's format: fp32 or fp16, llm_kv_format_for) and the embedding rows it gathers; activations are not
 * counted, so bytes/s against a copy ceiling is the bound that matters for decode. */
#pragma once
#include "model.h"
#include "llm.h"

G_BEGIN_DECLS

typedef struct {
  double flops;
  double bytes;
} BenchCost;

/* LLM over one chat prompt of n_tokens (one sequence, from position 0), then lm_head on the last
 * row. */
BenchCost bench_cost_prefill(const JfModelConfig *cfg, JfKvFormat kv, uint32_t n_tokens);
/* n_new greedy tokens after start cached positions: each a one-token forward + lm_head. */
BenchCost bench_cost_decode(const JfModelConfig *cfg, JfKvFormat kv, uint32_t start, uint32_t n_new);
/* The SigLIP tower blocks that run, the final norm and the understanding aligner, one image. */
BenchCost bench_cost_siglip(const JfModelConfig *cfg);
/* One Euler step with CFG for `batch` images and a prompt prefix of P tokens whose K/V are
 * cached: time embedding and UViT encoder once per image, the LLM over 2 x batch sequences of
 * (image tokens + 1) rows at positions P.., the decoder aligner and UViT decoder for the 2 x batch
 * rows (FiLM mappers once per image). Shapes come from the tensors in st. FALSE if a tensor the
 * generation path needs is missing. */
gboolean bench_cost_euler_step(const JfModelConfig *cfg, JfKvFormat kv, const StFile *st, uint32_t prefix,
                               uint32_t batch, BenchCost *out, GError **error);
/* The VAE decoder (post_quant_conv + decoder.*) of one latent of lat_h x lat_w, from the tensor
 * shapes in vae_st. */
gboolean bench_cost_vae_decode(const StFile *vae_st, uint32_t lat_h, uint32_t lat_w, BenchCost *out,
                               GError **error);

G_END_DECLS
