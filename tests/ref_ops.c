/* Plain-C references of the LLM ops (see ref_ops.h). */
#include "ref_ops.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { MM_ACCUMULATE = 1, MM_GELU = 2, MM_SILU = 4 };  /* = VKRT_MM_* */

float ref_gelu(float x) { return (float)(0.5 * x * (1.0 + erf(x / sqrt(2.0)))); }
float ref_silu(float x) { return (float)(x / (1.0 + exp(-(double)x))); }

void ref_matmul(float *y, const float *x, const uint16_t *w, const uint16_t *bias,
                uint32_t M, uint32_t N, uint32_t K, uint32_t flags)
{
  for (uint32_t m = 0; m < M; m++)
    for (uint32_t n = 0; n < N; n++) {
      double s = 0;
      for (uint32_t k = 0; k < K; k++)
        s += (double)x[(size_t)m * K + k] * bf16_to_f32(w[(size_t)n * K + k]);
      if (bias) s += bf16_to_f32(bias[n]);
      float r = (float)s;
      float *o = &y[(size_t)m * N + n];
      if (flags & MM_ACCUMULATE) r += *o;
      if (flags & MM_GELU) r = ref_gelu(r);
      if (flags & MM_SILU) r = ref_silu(r);
      *o = r;
    }
}

void ref_embed(float *y, const uint16_t *table, const int32_t *ids, uint32_t n, uint32_t dim, uint32_t vocab)
{
  for (uint32_t i = 0; i < n; i++)
    for (uint32_t c = 0; c < dim; c++)
      y[(size_t)i * dim + c] = ids[i] >= 0 && (uint32_t)ids[i] < vocab
                                 ? bf16_to_f32(table[(size_t)ids[i] * dim + c]) : 0.0f;
}

void ref_rmsnorm(float *y, const float *x, const uint16_t *w, uint32_t rows, uint32_t dim, float eps)
{
  for (uint32_t r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * dim;
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++) ss += (double)xr[i] * xr[i];
    double inv = 1.0 / sqrt(ss / dim + eps);
    for (uint32_t i = 0; i < dim; i++)
      y[(size_t)r * dim + i] = (float)(xr[i] * inv * bf16_to_f32(w[i]));
  }
}

void ref_rope(float *x, const int32_t *pos, uint32_t rows, uint32_t row_stride, uint32_t n_heads,
              uint32_t head_dim, float theta)
{
  uint32_t half = head_dim / 2;
  for (uint32_t r = 0; r < rows; r++)
    for (uint32_t h = 0; h < n_heads; h++) {
      float *v = x + (size_t)r * row_stride + (size_t)h * head_dim;
      for (uint32_t i = 0; i < half; i++) {
        /* as HF: inv_freq = 1 / theta^(2i/D) and angle = pos * inv_freq, both in fp32 */
        float inv_freq = 1.0f / powf(theta, (float)(2 * i) / (float)head_dim);
        float ang = (float)pos[r] * inv_freq;
        double c = cos((double)ang), s = sin((double)ang);
        double a = v[i], b = v[i + half];
        v[i] = (float)(a * c - b * s);
        v[i + half] = (float)(b * c + a * s);
      }
    }
}

void ref_attention(float *out, const float *q, const float *k, const float *v, const int32_t *mask,
                   uint32_t n_batch, uint32_t n_q, uint32_t n_heads, uint32_t head_dim, uint32_t q_start,
                   uint32_t n_kv, uint32_t kv_capacity, bool causal, float scale, uint32_t n_kv_heads)
{
  size_t HD = (size_t)n_heads * head_dim, KD = (size_t)n_kv_heads * head_dim;
  uint32_t group = n_heads / n_kv_heads;
  double *sc = malloc(sizeof(double) * (n_kv ? n_kv : 1));
  for (uint32_t b = 0; b < n_batch; b++)
    for (uint32_t i = 0; i < n_q; i++)
      for (uint32_t h = 0; h < n_heads; h++) {
        const float *qv = q + ((size_t)b * n_q + i) * HD + (size_t)h * head_dim;
        float *o = out + ((size_t)b * n_q + i) * HD + (size_t)h * head_dim;
        double mx = -INFINITY;
        for (uint32_t j = 0; j < n_kv; j++) {
          bool seen = (!causal || j <= q_start + i) && (!mask || mask[(size_t)b * kv_capacity + j] != 0);
          sc[j] = -INFINITY;
          if (!seen) continue;
          const float *kv = k + ((size_t)b * kv_capacity + j) * KD + (size_t)(h / group) * head_dim;
          double s = 0;
          for (uint32_t d = 0; d < head_dim; d++) s += (double)qv[d] * kv[d];
          sc[j] = s * scale;
          if (sc[j] > mx) mx = sc[j];
        }
        double l = 0;
        for (uint32_t d = 0; d < head_dim; d++) o[d] = 0;
        if (mx == -INFINITY) continue;
        double *acc = calloc(head_dim, sizeof(double));
        for (uint32_t j = 0; j < n_kv; j++) {
          if (sc[j] == -INFINITY) continue;
          double p = exp(sc[j] - mx);
          l += p;
          const float *vv = v + ((size_t)b * kv_capacity + j) * KD + (size_t)(h / group) * head_dim;
          for (uint32_t d = 0; d < head_dim; d++) acc[d] += p * vv[d];
        }
        for (uint32_t d = 0; d < head_dim; d++) o[d] = (float)(acc[d] / l);
        free(acc);
      }
  free(sc);
}

uint16_t ref_f16_from_f32(float f)
{
  _Float16 h = (_Float16)f;
  uint16_t u;
  memcpy(&u, &h, sizeof u);
  return u;
}

float ref_f16_to_f32(uint16_t u)
{
  _Float16 h;
  memcpy(&h, &u, sizeof h);
  return (float)h;
}

void ref_silu_mul(float *y, const float *gate, const float *up, uint32_t n)
{
  for (uint32_t i = 0; i < n; i++) y[i] = ref_silu(gate[i]) * up[i];
}

void ref_add(float *y, const float *a, const float *b, uint32_t n)
{
  for (uint32_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

void ref_argmax(uint32_t *out, const float *x, uint32_t rows, uint32_t n)
{
  for (uint32_t r = 0; r < rows; r++) {
    const float *xr = x + (size_t)r * n;
    uint32_t best = 0;
    for (uint32_t j = 1; j < n; j++)
      if (xr[j] > xr[best]) best = j;
    out[r] = best;
  }
}

/* order-preserving key of a float: ties in the key are ties in value (-0 sorts below +0) */
static uint32_t order_key(float f)
{
  uint32_t u;
  memcpy(&u, &f, 4);
  return (u & 0x80000000u) ? ~u : (u | 0x80000000u);
}

static int topk_cmp(const void *pa, const void *pb, void *user)
{
  const float *x = user;
  uint32_t a = *(const uint32_t *)pa, b = *(const uint32_t *)pb;
  uint32_t ka = order_key(x[a]), kb = order_key(x[b]);
  if (ka != kb) return ka > kb ? -1 : 1;
  return a < b ? -1 : a > b;
}

void ref_topk(float *out_val, uint32_t *out_idx, const float *x, uint32_t n, uint32_t k)
{
  uint32_t *idx = malloc(sizeof(uint32_t) * n);
  for (uint32_t i = 0; i < n; i++) idx[i] = i;
  qsort_r(idx, n, sizeof *idx, topk_cmp, (void *)x);
  for (uint32_t i = 0; i < k && i < n; i++) {
    out_idx[i] = idx[i];
    out_val[i] = x[idx[i]];
  }
  free(idx);
}

double ref_nmse(const float *got, const float *want, size_t n)
{
  double num = 0, den = 0;
  for (size_t i = 0; i < n; i++) {
    double d = (double)got[i] - want[i];
    num += d * d;
    den += (double)want[i] * want[i];
  }
  if (den == 0) return num == 0 ? 0 : INFINITY;
  return num / den;
}

double ref_max_abs(const float *got, const float *want, size_t n)
{
  double m = 0;
  for (size_t i = 0; i < n; i++) {
    double d = fabs((double)got[i] - want[i]);
    if (!(d <= m)) m = d;  /* NaN propagates as the max */
  }
  return m;
}
