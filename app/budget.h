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

G_END_DECLS
