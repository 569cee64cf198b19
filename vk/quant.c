/* Host-side Q8_0 quantization (layout in quant.h). */
#include "quant.h"
#include <math.h>
#include <string.h>

uint32_t vkrt_quant_q8_0_scale_stride(uint32_t k)
{
  uint32_t blocks = (k + VKRT_Q8_BLOCK - 1) / VKRT_Q8_BLOCK;
  return (blocks + 3u) & ~3u;
}

uint64_t vkrt_quant_q8_0_scales_offset(uint32_t n, uint32_t k)
{
  return ((uint64_t)n * k + 255u) & ~(uint64_t)255u;
}

uint64_t vkrt_quant_q8_0_bytes(uint32_t n, uint32_t k)
{
  return vkrt_quant_q8_0_scales_offset(n, k) + (uint64_t)n * vkrt_quant_q8_0_scale_stride(k) * 4u;
}

static inline float bf16_to_f32(uint16_t h)
{
  uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

gboolean vkrt_quant_q8_0(const uint16_t *w, uint32_t n, uint32_t k, void *out, GError **error)
{
  if (k == 0 || k % VKRT_Q8_BLOCK != 0) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "q8_0: K = %u is not a positive multiple of %u", k,
                VKRT_Q8_BLOCK);
    return FALSE;
  }
  uint8_t *base = out;
  int8_t *q = out;
  float *scales = (float *)(base + vkrt_quant_q8_0_scales_offset(n, k));
  const uint32_t sk = vkrt_quant_q8_0_scale_stride(k), nb = k / VKRT_Q8_BLOCK;
  memset(base + (uint64_t)n * k, 0, vkrt_quant_q8_0_scales_offset(n, k) - (uint64_t)n * k);
  for (uint32_t r = 0; r < n; r++) {
    const uint16_t *wr = w + (uint64_t)r * k;
    int8_t *qr = q + (uint64_t)r * k;
    float *sr = scales + (uint64_t)r * sk;
    for (uint32_t b = 0; b < nb; b++) {
      float v[VKRT_Q8_BLOCK], amax = 0.0f;
      for (uint32_t i = 0; i < VKRT_Q8_BLOCK; i++) {
        v[i] = bf16_to_f32(wr[b * VKRT_Q8_BLOCK + i]);
        if (!isfinite(v[i])) {
          g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "q8_0: weight [%u, %u] is not finite", r,
                      b * VKRT_Q8_BLOCK + i);
          return FALSE;
        }
        amax = fmaxf(amax, fabsf(v[i]));
      }
      float d = amax / 127.0f;
      /* dividing by d (not multiplying by 1/d) keeps max|w| exactly at +-127 */
      for (uint32_t i = 0; i < VKRT_Q8_BLOCK; i++) {
        float t = d > 0.0f ? roundf(v[i] / d) : 0.0f;
        qr[b * VKRT_Q8_BLOCK + i] = (int8_t)fminf(fmaxf(t, -127.0f), 127.0f);
      }
      sr[b] = d;
    }
    for (uint32_t b = nb; b < sk; b++)
      sr[b] = 0.0f;
  }
  return TRUE;
}
