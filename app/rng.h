/* rng: the engine's own documented random generator, so that a seed gives the same noise and
 * the same sampled tokens on every run and every device: xoshiro256** seeded through
 * splitmix64; normals by the Box-Muller transform in double precision (both outputs used). */
#pragma once
#include <stdint.h>

typedef struct {
  uint64_t s[4];
  double spare;
  int has_spare;
} JfRng;

void rng_init(JfRng *r, uint64_t seed);
uint64_t rng_next_u64(JfRng *r);
/* Uniform in [0, 1) with 53 random bits. */
double rng_uniform(JfRng *r);
/* Standard normal. */
double rng_normal(JfRng *r);
