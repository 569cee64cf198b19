#include "ref_quant.h"
#include "ref_ops.h"
#include <math.h>
#include <string.h>

void ref_q8_0_roundtrip(float *out, const uint16_t *w, uint32_t n, uint32_t k)
{
  for (uint32_t r = 0; r < n; r++)
    for (uint32_t b = 0; b < k / 32; b++) {
      const uint16_t *src = w + (size_t)r * k + b * 32;
      float amax = 0;
      for (int i = 0; i < 32; i++)
        amax = fmaxf(amax, fabsf(bf16_to_f32(src[i])));
      float d = amax / 127.0f;
      for (int i = 0; i < 32; i++) {
        float q = d > 0 ? roundf(bf16_to_f32(src[i]) / d) : 0.0f;
        out[(size_t)r * k + b * 32 + i] = d * q;
      }
    }
}

void ref_q8_0_unpack(float *out, const void *packed, uint32_t n, uint32_t k)
{
  const uint8_t *p = packed;
  size_t scales = ((size_t)n * k + 255) / 256 * 256;
  uint32_t sk = (k / 32 + 3) / 4 * 4;
  for (uint32_t r = 0; r < n; r++)
    for (uint32_t c = 0; c < k; c++) {
      float d;
      memcpy(&d, p + scales + ((size_t)r * sk + c / 32) * 4, 4);
      out[(size_t)r * k + c] = d * (float)(int8_t)p[(size_t)r * k + c];
    }
}

void ref_matmul_f32w(float *y, const float *x, const float *w, const uint16_t *bias,
                     uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  for (uint32_t m = 0; m < M; m++)
    for (uint32_t n = 0; n < N; n++) {
      double s = 0;
      for (uint32_t k = 0; k < K; k++)
        s += (double)x[(size_t)m * K + k] * w[(size_t)n * K + k];
      if (bias) s += bf16_to_f32(bias[n]);
      float v = (float)s;
      if (flags & 1) v += y[(size_t)m * N + n];
      if (flags & 2) v = ref_gelu(v);
      if (flags & 4) v = ref_silu(v);
      y[(size_t)m * N + n] = v;
    }
}
