/* bf16 <-> float conversions for the tests and their plain-C references. Written here rather than
 * taken from the engine so that a reference never shares a rounding bug with the code it checks. */
#pragma once
#include <stdint.h>
#include <string.h>

/* A bf16 bit pattern as a float (exact: bf16 is the top half of a float). */
static inline float bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

/* The bf16 nearest to f (ties to even); a NaN stays a NaN (made quiet, so that truncating its
 * payload cannot turn it into an infinity). */
static inline uint16_t bf16_from_f32(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return (uint16_t)((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}
