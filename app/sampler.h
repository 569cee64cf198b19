/* sampler: HF's sampling order for causal LMs: logits / temperature -> top-k -> top-p -> softmax
 * -> multinomial (temperature 0 = greedy). Runs on the host over candidates the GPU selected. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "rng.h"

G_BEGIN_DECLS

typedef struct {
  float temperature;   /* 0 = greedy */
  float top_p;         /* 1 = off */
  int top_k;           /* 0 = off */
  int max_new_tokens;
  uint64_t seed;
} JfSampling;

/* The demo's defaults: temperature 0.1, top_p 0.95, top_k 50 (HF's implicit default),
 * 512 new tokens, seed 42. */
JfSampling sampler_defaults(void);

/* Picks one id from n candidates given in DESCENDING order of logit (vals[i] belongs to ids[i]).
 * The candidates must include every token top-k would keep. */
int32_t sampler_pick(const JfSampling *s, const float *vals, const uint32_t *ids, uint32_t n, JfRng *rng);

/* Sorts a full logit row into descending (value, id) candidate lists, keeping the best `keep`
 * (for top_k = 0 or > what the GPU op offers). Returns the number kept. */
uint32_t sampler_sort_candidates(const float *logits, uint32_t n, uint32_t keep, float *vals, uint32_t *ids);

G_END_DECLS
