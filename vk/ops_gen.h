/* Generation ops: what the ShallowUViT encoder/decoder, the SDXL-VAE decoder and the Euler loop
 * need beyond the core op library (ops.h). Same conventions as ops.h: fp32 activations, bf16
 * weights (uint16 bit patterns), sizes in elements, ops record into a VkrtSeq and never submit,
 * invalid arguments are recorded as the sequence's error (returned by vkrt_seq_submit).
 *
 * Image layout: activations are channel-last, "NHWC" = [batch, height, width, channels] (a row
 * of pixels is a token row, so norms and linears act on the last dimension). Where a tensor is
 * "NCHW" it says so (latents, velocities and the VAE's RGB output, the fixture layout).
 *
 * Tensors larger than one storage binding (vkrt_max_binding) are bound in windows by the
 * wrappers: conv2d, groupnorm, softmax, upsample2x and the element-wise ops split inside an
 * image (bands of rows / pixels), so a single 384x384x256 fp32 image (151 MB) works on a device
 * limited to 128 MiB per binding; dwconv2d, grn, pixel_shuffle and concat split at image
 * boundaries and need one image per operand to fit a binding; cfg_euler, transpose and
 * gemm_f32 bind whole tensors (callers chunk). Wrappers take any tensor offset that is a
 * multiple of the element size (windows start on the binding alignment below it).
 *
 * FLOPs: conv2d, dwconv2d and gemm_f32 count 2 per multiply-add; norms and element-wise ops
 * count nothing (as the reference bench, which counts only Linear / Conv / attention work). */
#pragma once

#include "vkrt.h"

G_BEGIN_DECLS

/* --- convolution ----------------------------------------------------------------------------- */

enum {
  VKRT_CONV_ACCUMULATE = 1 << 0,  /* y += conv(x) (fused residual add) */
  VKRT_CONV_UPSAMPLE2X = 1 << 1,  /* convolve the nearest-neighbour 2x upsampling of x (fused) */
  VKRT_CONV_IN_NCHW = 1 << 2,     /* x is NCHW */
  VKRT_CONV_OUT_NCHW = 1 << 3,    /* y is NCHW (a band of rows then spans all channel planes) */
};

typedef struct {
  uint32_t batch;
  uint32_t in_h, in_w, in_c;      /* x as stored (before the optional 2x upsampling) */
  uint32_t out_c;
  uint32_t kernel_h, kernel_w, stride, pad;  /* zero padding on all four sides */
  uint32_t flags;                 /* VKRT_CONV_* */
} VkrtConvParams;

/* Output size along one axis: (in * (up ? 2 : 1) + 2 pad - kernel) / stride + 1 (0 if none). */
uint32_t vkrt_conv_out_size(uint32_t in, uint32_t kernel, uint32_t stride, uint32_t pad, bool up);

/* 2-D convolution (cross-correlation as PyTorch's Conv2d, groups = 1) as an implicit GEMM with
 * fp32 accumulation: y [B, Ho, Wo, out_c] (NHWC unless OUT_NCHW) from x [B, in_h, in_w, in_c]
 * (NHWC unless IN_NCHW); w bf16 [out_c, kernel_h, kernel_w, in_c] (channel-last: see
 * vkrt_conv_weight_reorder), bias bf16 [out_c] or vkrt_tensor_none(). y must not overlap x.
 * bf16 tensors are read as 32-bit words: the buffer must extend to a 4-byte boundary. Images
 * larger than a binding go in bands of output rows; weights larger than a binding in groups of
 * output channels. */
void vkrt_op_conv2d(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                    const VkrtConvParams *p);

/* PyTorch's Conv2d weight [o, i, kh, kw] -> the layout conv2d reads, [o, kh, kw, i] (host side). */
void vkrt_conv_weight_reorder(uint16_t *dst, const uint16_t *src, uint32_t out_c, uint32_t in_c,
                              uint32_t kh, uint32_t kw);

/* Depthwise convolution (groups = channels), stride 1, zero padding `pad`, NHWC:
 * y[b,h,w,c] = bias[c] + sum_{ky,kx} x[b, h+ky-pad, w+kx-pad, c] * w[ky, kx, c]
 * with w bf16 [k, k, c] (see vkrt_dwconv_weight_reorder), bias bf16 [c] or none. Output size
 * = input size + 2 pad - k + 1. y must not overlap x. */
void vkrt_op_dwconv2d(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor w, VkrtTensor bias,
                      uint32_t batch, uint32_t h, uint32_t w_, uint32_t c, uint32_t k, uint32_t pad);

/* PyTorch's depthwise weight [c, 1, k, k] -> [k, k, c] (host side). */
void vkrt_dwconv_weight_reorder(uint16_t *dst, const uint16_t *src, uint32_t c, uint32_t k);

/* Activation x activation GEMM, fp32 throughout: y[M,N] = x[M,K] . b[N,K]^T (e.g. attention
 * scores q k^T; for probabilities x values, transpose v first with vkrt_op_transpose). Each
 * operand must fit one binding (callers chunk rows). */
void vkrt_op_gemm_f32(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor b, uint32_t M, uint32_t N,
                      uint32_t K);

/* --- norms ----------------------------------------------------------------------------------- */

/* Bytes of scratch that vkrt_op_groupnorm needs for these sizes on this device. */
uint64_t vkrt_op_groupnorm_scratch_bytes(const VkrtContext *ctx, uint32_t batch, uint32_t hw,
                                         uint32_t c, uint32_t groups);

/* GroupNorm over NHWC x [batch, hw, c]: `groups` groups of c/groups contiguous channels,
 * statistics over (hw x c/groups) values per image and group in fp32 (Welford/Chan merging,
 * biased variance): y = (x - mean) / sqrt(var + eps) * gamma[c] + beta[c], then SiLU if `silu`.
 * gamma/beta bf16 [c]. y may be x. scratch: vkrt_op_groupnorm_scratch_bytes() bytes. */
void vkrt_op_groupnorm(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, VkrtTensor gamma, VkrtTensor beta,
                       VkrtTensor scratch, uint32_t batch, uint32_t hw, uint32_t c, uint32_t groups,
                       float eps, bool silu);

/* Bytes of scratch that vkrt_op_grn needs. */
uint64_t vkrt_op_grn_scratch_bytes(uint32_t batch, uint32_t c);

/* ConvNeXt-V2 Global Response Norm, in place on NHWC x [batch, hw, c]:
 * G[b,k] = sqrt(sum_p x[b,p,k]^2); N[b,k] = G[b,k] / (mean_k G[b,:] + 1e-6);
 * x = x + gamma[k] * (x * N[b,k]) + beta[k]. gamma/beta bf16 [c]. */
void vkrt_op_grn(VkrtSeq *seq, VkrtTensor x, VkrtTensor gamma, VkrtTensor beta, VkrtTensor scratch,
                 uint32_t batch, uint32_t hw, uint32_t c);

/* Row softmax in place: x[r,:] = exp(scale (x[r,:] - max)) / sum, for rows x n (fp32). */
void vkrt_op_softmax(VkrtSeq *seq, VkrtTensor x, uint32_t rows, uint32_t n, float scale);

/* --- element-wise ---------------------------------------------------------------------------- */

/* y[i] = x[i] * sigmoid(x[i]) for n elements. y may be x. */
void vkrt_op_silu(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint64_t n);

/* y[i] = x[i] * a + b for n elements. y may be x. */
void vkrt_op_scale_shift(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint64_t n, float a, float b);

/* FiLM modulation in place on NHWC x [batch, hw, c]: x = x * (1 + scale) + shift with
 * scale = mod[m, 0:c], shift = mod[m, c:2c], m = b % mod_batch (so one modulation row can serve
 * several images, e.g. the cond and uncond rows of a CFG batch). mod fp32 [mod_batch, 2c]. */
void vkrt_op_film(VkrtSeq *seq, VkrtTensor x, VkrtTensor mod, uint32_t batch, uint32_t hw,
                  uint32_t c, uint32_t mod_batch);

/* Nearest-neighbour 2x upsampling, NHWC: y [batch, 2h, 2w, c] from x [batch, h, w, c]. */
void vkrt_op_upsample2x(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                        uint32_t w, uint32_t c);

/* PixelShuffle(r) from NHWC to NCHW: x [batch, h, w, c_out*r*r] -> y [batch, c_out, h*r, w*r],
 * y[b, c, r*h+i, r*w+j] = x[b, h, w, c*r*r + i*r + j] (PyTorch's channel order). */
void vkrt_op_pixel_shuffle(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                           uint32_t w, uint32_t c_out, uint32_t r);
/* The same shuffle with a channel-last result, y [batch, h*r, w*r, c_out] (between two
 * unpatchify stages of a decoder that upsamples more than once). */
void vkrt_op_pixel_shuffle_nhwc(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t batch, uint32_t h,
                                uint32_t w, uint32_t c_out, uint32_t r);

/* Channel concatenation of NHWC tensors: y [batch, hw, ca+cb] = [a[b] | b_[b % b_batch]] with
 * a [batch, hw, ca], b_ [b_batch, hw, cb] (b_ is broadcast over CFG rows, as a is not). b_ must
 * fit one binding. */
void vkrt_op_concat(VkrtSeq *seq, VkrtTensor y, VkrtTensor a, VkrtTensor b_, uint32_t batch,
                    uint32_t hw, uint32_t ca, uint32_t cb, uint32_t b_batch);

/* Classifier-free guidance and one Euler step of the rectified flow, per latent element:
 *   v = cfg * v_cond - (cfg - 1) * v_uncond, with v_cond = v[0:n], v_uncond = v[n:2n];
 *   x0 = z + (1 - t) * v   (the clean-latent estimate from the z *before* the step, t in [0,1]);
 *   z  = z + dt * v.
 * z fp32 [n, per] (updated in place), v fp32 [2n, per]. Everything must fit one binding.
 * params fp32 [3] = { cfg, dt, t } is read from device memory when the dispatch runs, not baked
 * into the recording: a recorded step can be replayed with new values written to it.
 * `out` (NULL: none) names optional outputs written by the same pass, so a step needs no
 * separate copy or preview dispatch. */
typedef struct {
  VkrtTensor x0;             /* fp32 [n, per]: the clean-latent estimate */
  VkrtTensor v_out;          /* fp32 [n, per]: the guided velocity */
  VkrtTensor z_prev;         /* fp32 [n, per]: z before the step */
  VkrtTensor rgba;           /* the cheap preview of x0 for images 0 .. rgb_batch-1, see below */
  uint32_t rgb_batch, hw;
  const float (*factors)[3]; /* [4][3], e.g. vkrt_sdxl_rgb_factors */
  const float *bias;         /* [3] */
} VkrtCfgEulerOut;
/* The preview: rgba [rgb_batch, hw] packed uint32 (bytes R, G, B, 255 in memory order) from the
 * first (up to) 4 of x0's per / hw NCHW channels, missing ones 0:
 * rgb_c = sum_i x0_i * factors[i][c] + bias[c], then round(clamp((rgb + 1) / 2, 0, 1) * 255). */
void vkrt_op_cfg_euler(VkrtSeq *seq, VkrtTensor z, VkrtTensor v, VkrtTensor params, uint32_t n,
                       uint32_t per, const VkrtCfgEulerOut *out);

/* y[c, r] = x[r, c] for x fp32 [rows, cols]. Both must fit one binding. */
void vkrt_op_transpose(VkrtSeq *seq, VkrtTensor y, VkrtTensor x, uint32_t rows, uint32_t cols);

/* Latent factors of the linear latent -> RGB preview (ComfyUI's SDXL table, MODEL.md §7):
 * rows = latent channel, columns R, G, B; and the bias. */
extern const float vkrt_sdxl_rgb_factors[4][3];
extern const float vkrt_sdxl_rgb_bias[3];

G_END_DECLS
