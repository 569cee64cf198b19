/* budget: how much GPU work one queue submit may carry on this device.
 *
 * Desktop drivers kill a submit that runs too long (Windows TDR after 2 s; Linux amdgpu/i915/
 * nouveau job timeouts of a few seconds, less when the GPU also drives the display). The
 * pipelines therefore cut long work (the LLM over a long prompt or the CFG pair of an Euler
 * step, the VAE decoder) into submits of at most this many FLOPs, and check for cancel between
 * them. The figure is per device class, aiming at 0.1-0.5 s on the slow end of each class. */
#pragma once
#include "vkrt.h"

G_BEGIN_DECLS

/* FLOPs (as the ops count them) one submit should carry at most; JANUSFLOW_SUBMIT_GFLOP
 * overrides (tests use it to force many cuts). A single op is never split: it may exceed this. */
uint64_t budget_submit_flops(const VkrtContext *ctx);

/* The work recorded into the current submit, measured against a budget through the context's
 * FLOP counter: recording loops ask budget_meter_full() between pieces of work (LLM layers, VAE
 * ops) and restart the meter when they cut a submit. */
typedef struct {
  const VkrtContext *ctx;
  uint64_t budget;  /* FLOPs per submit */
  uint64_t start;   /* vkrt_context_recorded_flops() when the current submit's recording began */
} BudgetMeter;

static inline void budget_meter_init(BudgetMeter *m, const VkrtContext *ctx, uint64_t budget)
{
  m->ctx = ctx;
  m->budget = budget;
  m->start = vkrt_context_recorded_flops(ctx);
}

static inline void budget_meter_restart(BudgetMeter *m) { m->start = vkrt_context_recorded_flops(m->ctx); }

static inline gboolean budget_meter_full(const BudgetMeter *m)
{
  return vkrt_context_recorded_flops(m->ctx) - m->start >= m->budget;
}

G_END_DECLS
