#include "sampler.h"
#include <math.h>
#include <stdlib.h>

JfSampling sampler_defaults(void)
{
  JfSampling s = { .temperature = 0.1f, .top_p = 0.95f, .top_k = 50, .max_new_tokens = 512, .seed = 42 };
  return s;
}

int32_t sampler_pick(const JfSampling *s, const float *vals, const uint32_t *ids, uint32_t n, JfRng *rng)
{
  if (n == 0)
    return -1;
  if (s->temperature <= 0.0f || n == 1)
    return (int32_t)ids[0];
  uint32_t k = n;
  if (s->top_k > 0 && (uint32_t)s->top_k < k)
    k = (uint32_t)s->top_k;
  /* softmax over the kept candidates, in double: the probabilities feed a cumulative sum */
  double *p = g_new(double, k);
  double mx = vals[0] / s->temperature, sum = 0;
  for (uint32_t i = 0; i < k; i++) {
    p[i] = exp(vals[i] / s->temperature - mx);
    sum += p[i];
  }
  for (uint32_t i = 0; i < k; i++)
    p[i] /= sum;
  if (s->top_p < 1.0f) {
    /* HF: sort ascending, drop tokens whose cumulative probability <= 1 - top_p, keep the best.
     * Walking our descending list from the tail gives the same cumulative sums. */
    double cum = 0;
    uint32_t keep = k;
    for (uint32_t i = k; i-- > 1;) {
      cum += p[i];
      if (cum <= 1.0 - s->top_p)
        keep = i;
      else
        break;
    }
    k = keep;
    sum = 0;
    for (uint32_t i = 0; i < k; i++)
      sum += p[i];
    for (uint32_t i = 0; i < k; i++)
      p[i] /= sum;
  }
  double u = rng_uniform(rng), acc = 0;
  int32_t pick = (int32_t)ids[k - 1];
  for (uint32_t i = 0; i < k; i++) {
    acc += p[i];
    if (u < acc) {
      pick = (int32_t)ids[i];
      break;
    }
  }
  g_free(p);
  return pick;
}

typedef struct { float v; uint32_t i; } Cand;

static int cand_cmp(const void *a, const void *b)
{
  const Cand *x = a, *y = b;
  if (x->v != y->v)
    return x->v > y->v ? -1 : 1;
  return x->i < y->i ? -1 : (x->i > y->i);
}

uint32_t sampler_sort_candidates(const float *logits, uint32_t n, uint32_t keep, float *vals, uint32_t *ids)
{
  Cand *c = g_new(Cand, n);
  for (uint32_t i = 0; i < n; i++) {
    c[i].v = isnan(logits[i]) ? -INFINITY : logits[i];
    c[i].i = i;
  }
  qsort(c, n, sizeof *c, cand_cmp);
  if (keep > n)
    keep = n;
  for (uint32_t i = 0; i < keep; i++) {
    vals[i] = c[i].v;
    ids[i] = c[i].i;
  }
  g_free(c);
  return keep;
}
