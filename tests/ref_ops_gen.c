#include "ref_ops_gen.h"
#include <math.h>
#include <stdlib.h>

void ref_conv2d(float *y, const float *x, const uint16_t *w, const uint16_t *bias, const RefConv *p,
                uint32_t *ho_out, uint32_t *wo_out)
{
  uint32_t s = p->upsample ? 2 : 1;
  uint32_t he = p->in_h * s, we = p->in_w * s;
  uint32_t ho = (he + 2 * p->pad - p->kh) / p->stride + 1, wo = (we + 2 * p->pad - p->kw) / p->stride + 1;
  *ho_out = ho;
  *wo_out = wo;
  for (uint32_t b = 0; b < p->batch; b++)
    for (uint32_t oy = 0; oy < ho; oy++)
      for (uint32_t ox = 0; ox < wo; ox++)
        for (uint32_t o = 0; o < p->out_c; o++) {
          double acc = bias ? bf16_to_f32(bias[o]) : 0.0;
          for (uint32_t i = 0; i < p->in_c; i++)
            for (uint32_t ky = 0; ky < p->kh; ky++)
              for (uint32_t kx = 0; kx < p->kw; kx++) {
                int iy = (int)(oy * p->stride + ky) - (int)p->pad, ix = (int)(ox * p->stride + kx) - (int)p->pad;
                if (iy < 0 || ix < 0 || iy >= (int)he || ix >= (int)we)
                  continue;
                uint32_t sy = (uint32_t)iy / s, sx = (uint32_t)ix / s;
                size_t xi = p->in_nchw ? (((size_t)b * p->in_c + i) * p->in_h + sy) * p->in_w + sx
                                       : (((size_t)b * p->in_h + sy) * p->in_w + sx) * p->in_c + i;
                acc += (double)x[xi] * bf16_to_f32(w[(((size_t)o * p->in_c + i) * p->kh + ky) * p->kw + kx]);
              }
          size_t yi = p->out_nchw ? (((size_t)b * p->out_c + o) * ho + oy) * wo + ox
                                  : (((size_t)b * ho + oy) * wo + ox) * p->out_c + o;
          y[yi] = (float)(p->accumulate ? y[yi] + acc : acc);
        }
}

void ref_dwconv2d(float *y, const float *x, const uint16_t *w, const uint16_t *bias, uint32_t batch,
                  uint32_t h, uint32_t wd, uint32_t c, uint32_t k, uint32_t pad)
{
  uint32_t ho = h + 2 * pad - k + 1, wo = wd + 2 * pad - k + 1;
  for (uint32_t b = 0; b < batch; b++)
    for (uint32_t oy = 0; oy < ho; oy++)
      for (uint32_t ox = 0; ox < wo; ox++)
        for (uint32_t ch = 0; ch < c; ch++) {
          double acc = bias ? bf16_to_f32(bias[ch]) : 0.0;
          for (uint32_t ky = 0; ky < k; ky++)
            for (uint32_t kx = 0; kx < k; kx++) {
              int iy = (int)(oy + ky) - (int)pad, ix = (int)(ox + kx) - (int)pad;
              if (iy < 0 || ix < 0 || iy >= (int)h || ix >= (int)wd)
                continue;
              acc += (double)x[(((size_t)b * h + iy) * wd + ix) * c + ch] *
                     bf16_to_f32(w[((size_t)ch * k + ky) * k + kx]);
            }
          y[(((size_t)b * ho + oy) * wo + ox) * c + ch] = (float)acc;
        }
}

void ref_groupnorm(float *y, const float *x, const uint16_t *gamma, const uint16_t *beta, uint32_t batch,
                   uint32_t hw, uint32_t c, uint32_t groups, float eps, bool silu)
{
  uint32_t cpg = c / groups;
  for (uint32_t b = 0; b < batch; b++)
    for (uint32_t g = 0; g < groups; g++) {
      double sum = 0, sq = 0, n = (double)hw * cpg;
      for (uint32_t p = 0; p < hw; p++)
        for (uint32_t k = 0; k < cpg; k++)
          sum += x[((size_t)b * hw + p) * c + g * cpg + k];
      double mean = sum / n;
      for (uint32_t p = 0; p < hw; p++)
        for (uint32_t k = 0; k < cpg; k++) {
          double d = x[((size_t)b * hw + p) * c + g * cpg + k] - mean;
          sq += d * d;
        }
      double rstd = 1.0 / sqrt(sq / n + eps);
      for (uint32_t p = 0; p < hw; p++)
        for (uint32_t k = 0; k < cpg; k++) {
          uint32_t ch = g * cpg + k;
          size_t i = ((size_t)b * hw + p) * c + ch;
          double v = (x[i] - mean) * rstd * bf16_to_f32(gamma[ch]) + bf16_to_f32(beta[ch]);
          if (silu)
            v = v / (1.0 + exp(-v));
          y[i] = (float)v;
        }
    }
}

void ref_grn(float *x, const uint16_t *gamma, const uint16_t *beta, uint32_t batch, uint32_t hw, uint32_t c)
{
  double *g = malloc(sizeof(double) * c);
  for (uint32_t b = 0; b < batch; b++) {
    double mean = 0;
    for (uint32_t k = 0; k < c; k++) {
      double s = 0;
      for (uint32_t p = 0; p < hw; p++) {
        double v = x[((size_t)b * hw + p) * c + k];
        s += v * v;
      }
      g[k] = sqrt(s);
      mean += g[k];
    }
    mean /= c;
    for (uint32_t p = 0; p < hw; p++)
      for (uint32_t k = 0; k < c; k++) {
        size_t i = ((size_t)b * hw + p) * c + k;
        double nk = g[k] / (mean + 1e-6);
        x[i] = (float)(x[i] + bf16_to_f32(gamma[k]) * (x[i] * nk) + bf16_to_f32(beta[k]));
      }
  }
  free(g);
}

void ref_silu(float *y, const float *x, uint64_t n)
{
  for (uint64_t i = 0; i < n; i++)
    y[i] = (float)(x[i] / (1.0 + exp(-(double)x[i])));
}

void ref_film(float *x, const float *mod, uint32_t batch, uint32_t hw, uint32_t c, uint32_t mod_batch)
{
  for (uint32_t b = 0; b < batch; b++) {
    const float *m = mod + (size_t)(b % mod_batch) * 2 * c;
    for (uint32_t p = 0; p < hw; p++)
      for (uint32_t k = 0; k < c; k++) {
        size_t i = ((size_t)b * hw + p) * c + k;
        x[i] = (float)((double)x[i] * (1.0 + m[k]) + m[c + k]);
      }
  }
}

void ref_upsample2x(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c)
{
  for (uint32_t b = 0; b < batch; b++)
    for (uint32_t oy = 0; oy < 2 * h; oy++)
      for (uint32_t ox = 0; ox < 2 * w; ox++)
        memcpy(y + (((size_t)b * 2 * h + oy) * 2 * w + ox) * c, x + (((size_t)b * h + oy / 2) * w + ox / 2) * c,
               c * sizeof(float));
}

void ref_pixel_shuffle(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c_out,
                       uint32_t r)
{
  uint32_t cin = c_out * r * r;
  for (uint32_t b = 0; b < batch; b++)
    for (uint32_t ch = 0; ch < c_out; ch++)
      for (uint32_t yy = 0; yy < h; yy++)
        for (uint32_t i = 0; i < r; i++)
          for (uint32_t xx = 0; xx < w; xx++)
            for (uint32_t j = 0; j < r; j++)
              y[(((size_t)b * c_out + ch) * h * r + yy * r + i) * w * r + xx * r + j] =
                x[(((size_t)b * h + yy) * w + xx) * cin + ch * r * r + i * r + j];
}

void ref_pixel_shuffle_nhwc(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c_out,
                            uint32_t r)
{
  uint32_t cin = c_out * r * r;
  for (uint32_t b = 0; b < batch; b++)
    for (uint32_t yy = 0; yy < h * r; yy++)
      for (uint32_t xx = 0; xx < w * r; xx++)
        for (uint32_t ch = 0; ch < c_out; ch++)
          y[(((size_t)b * h * r + yy) * w * r + xx) * c_out + ch] =
            x[(((size_t)b * h + yy / r) * w + xx / r) * cin + ch * r * r + (yy % r) * r + xx % r];
}

void ref_concat(float *y, const float *a, const float *b, uint32_t batch, uint32_t hw, uint32_t ca,
                uint32_t cb, uint32_t b_batch)
{
  for (uint32_t i = 0; i < batch; i++)
    for (uint32_t p = 0; p < hw; p++) {
      float *dst = y + ((size_t)i * hw + p) * (ca + cb);
      memcpy(dst, a + ((size_t)i * hw + p) * ca, ca * sizeof(float));
      memcpy(dst + ca, b + ((size_t)(i % b_batch) * hw + p) * cb, cb * sizeof(float));
    }
}

void ref_cfg_euler(float *z, float *x0, float *v_out, const float *v, uint32_t n, uint32_t per, float cfg,
                   float dt, float t)
{
  size_t total = (size_t)n * per;
  for (size_t i = 0; i < total; i++) {
    double vel = (double)cfg * v[i] - ((double)cfg - 1.0) * v[total + i];
    if (x0)
      x0[i] = (float)(z[i] + (1.0 - t) * vel);
    if (v_out)
      v_out[i] = (float)vel;
    z[i] = (float)(z[i] + (double)dt * vel);
  }
}

void ref_latent_rgb(uint8_t *rgba, const float *lat, uint32_t batch, uint32_t h, uint32_t w,
                    const float f[4][3], const float bias[3])
{
  size_t hw = (size_t)h * w;
  for (uint32_t b = 0; b < batch; b++)
    for (size_t p = 0; p < hw; p++) {
      uint8_t *o = rgba + ((size_t)b * hw + p) * 4;
      for (int c = 0; c < 3; c++) {
        double s = bias[c];
        for (int i = 0; i < 4; i++)
          s += (double)lat[((size_t)b * 4 + i) * hw + p] * f[i][c];
        double u = (s + 1.0) / 2.0;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        o[c] = (uint8_t)floor(u * 255.0 + 0.5);
      }
      o[3] = 255;
    }
}

void ref_gemm_f32(float *y, const float *x, const float *b, uint32_t M, uint32_t N, uint32_t K)
{
  for (uint32_t m = 0; m < M; m++)
    for (uint32_t n = 0; n < N; n++) {
      double acc = 0;
      for (uint32_t k = 0; k < K; k++)
        acc += (double)x[(size_t)m * K + k] * b[(size_t)n * K + k];
      y[(size_t)m * N + n] = (float)acc;
    }
}

void ref_softmax(float *x, uint32_t rows, uint32_t n, float scale)
{
  for (uint32_t r = 0; r < rows; r++) {
    float *row = x + (size_t)r * n;
    double mx = row[0], s = 0;
    for (uint32_t j = 1; j < n; j++)
      mx = row[j] > mx ? row[j] : mx;
    for (uint32_t j = 0; j < n; j++)
      s += exp((row[j] - mx) * scale);
    for (uint32_t j = 0; j < n; j++)
      row[j] = (float)(exp((row[j] - mx) * scale) / s);
  }
}
