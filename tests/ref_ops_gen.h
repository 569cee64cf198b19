/* Plain-C references for the generation ops (vk/ops_gen.h), used by the op tests. Direct loops in
 * double precision, written from the math in ops_gen.h (PyTorch weight layouts where a layout
 * matters, so the weight reordering is tested too). */
#pragma once
#include <stdint.h>
#include <stdbool.h>
#include <string.h>

#include "bf16.h"

typedef struct {
  uint32_t batch, in_h, in_w, in_c, out_c, kh, kw, stride, pad;
  bool accumulate, upsample, in_nchw, out_nchw;
} RefConv;

/* w bf16 in PyTorch layout [out_c, in_c, kh, kw]; bias bf16 [out_c] or NULL. */
void ref_conv2d(float *y, const float *x, const uint16_t *w, const uint16_t *bias, const RefConv *p,
                uint32_t *ho, uint32_t *wo);
/* w bf16 [c, 1, k, k]. */
void ref_dwconv2d(float *y, const float *x, const uint16_t *w, const uint16_t *bias, uint32_t batch,
                  uint32_t h, uint32_t wd, uint32_t c, uint32_t k, uint32_t pad);
void ref_gemm_f32(float *y, const float *x, const float *b, uint32_t M, uint32_t N, uint32_t K);
void ref_softmax(float *x, uint32_t rows, uint32_t n, float scale);
void ref_groupnorm(float *y, const float *x, const uint16_t *gamma, const uint16_t *beta, uint32_t batch,
                   uint32_t hw, uint32_t c, uint32_t groups, float eps, bool silu);
void ref_grn(float *x, const uint16_t *gamma, const uint16_t *beta, uint32_t batch, uint32_t hw, uint32_t c);
void ref_silu(float *y, const float *x, uint64_t n);
void ref_film(float *x, const float *mod, uint32_t batch, uint32_t hw, uint32_t c, uint32_t mod_batch);
void ref_upsample2x(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c);
void ref_pixel_shuffle(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c_out,
                       uint32_t r);
void ref_pixel_shuffle_nhwc(float *y, const float *x, uint32_t batch, uint32_t h, uint32_t w, uint32_t c_out,
                            uint32_t r);
void ref_concat(float *y, const float *a, const float *b, uint32_t batch, uint32_t hw, uint32_t ca,
                uint32_t cb, uint32_t b_batch);
void ref_cfg_euler(float *z, float *x0, float *v_out, const float *v, uint32_t n, uint32_t per, float cfg,
                   float dt, float t);
void ref_latent_rgb(uint8_t *rgba, const float *lat, uint32_t batch, uint32_t h, uint32_t w,
                    const float f[4][3], const float bias[3]);
