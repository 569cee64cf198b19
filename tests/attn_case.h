/* One vkrt_op_attention case on random inputs against ref_attention, shared by the op test
 * (tests/test_ops.c: the CPU kernels, operands at odd offsets) and the GPU-path test
 * (tests/test_gpu_paths.c: flash attention forced). Compiled into both. */
#pragma once

#include <glib.h>
#include <stdbool.h>
#include <stdint.h>
#include "vkrt.h"

typedef struct {
  uint32_t batch, n_q, heads, kv_heads, head_dim, q_start, n_kv, kv_cap;
  bool causal, mask;  /* mask: random hidden keys, sequence 0 sees none (its rows must be zeros) */
  uint64_t scratch;   /* bytes of scratch given to the op (the GEMM form on CPU devices); 0: none */
  uint32_t dispatches; /* > 0: the op must record exactly this many (which form ran, its
                        * chunks), where bindings are not made small */
  uint32_t hide0, hide1; /* mask: keys [hide0, hide1) hidden in every sequence too (a whole
                          * chunk of the split-K form) */
} AttnCase;

/* Runs the case with q, k, v and the mask starting `offs[0..3]` bytes into their buffers (NULL:
 * all at 0) and returns the nmse against the reference. */
double attn_case_run(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4]);

/* attn_case_run, asserting nmse <= 1e-10 (printing the case, prefixed by label, when not). */
void attn_case_check(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], const char *label);

/* The same with K and V given to the op as fp16 (VkrtAttnParams.kv_f16) and to the reference as
 * the same rounded values, so that the bound stays as tight. */
void attn_case_check_f16(VkrtContext *ctx, GRand *rng, const AttnCase *c, const uint64_t offs[4], const char *label);
