/* vae: the SDXL-VAE decoder (diffusers AutoencoderKL.decode: post_quant_conv + Decoder, MODEL.md
 * §4.9) on Vulkan, fp32 activations throughout (SDXL-VAE activations overflow fp16), bf16
 * weights (the F32 file is rounded once at load).
 *
 * Internally channel-last ([h, w, c]): the mid-block attention then reads its tokens directly.
 * Images are decoded one after another through the same scratch buffers, so device memory does
 * not grow with the batch (at 48x48 -> 384x384 with 512/256/128 channels: about 0.5 GB). Large
 * activations (256 x 384 x 384 fp32 = 151 MB) are bound in windows by the ops.
 *
 * JfVae owns its weights and scratch buffers and must be freed before the context. */
#pragma once
#include <gio/gio.h>
#include "vkrt.h"
#include "config.h"

G_BEGIN_DECLS

typedef struct JfVae JfVae;

/* Reads vae_dir/config.json (config_load_vae; unless cfg, already read, is given) and
 * vae_dir/diffusion_pytorch_model.safetensors
 * (decoder.* and post_quant_conv.*; encoder.* / quant_conv.* are ignored). The mid-block
 * attention may use the current names (to_q/to_k/to_v/to_out.0) or the legacy ones
 * (query/key/value/proj_attn), as Linear [c, c] or 1x1-conv [c, c, 1, 1] weights. Scratch is
 * sized for latents of latent_h x latent_w; max_batch bounds n in vae_decode. */
JfVae *vae_new(VkrtContext *ctx, const char *vae_dir, const JfVaeConfig *cfg, int max_batch, int latent_h,
               int latent_w, GError **error);
void vae_free(JfVae *v);

uint32_t vae_latent_channels(const JfVae *v);
uint32_t vae_out_channels(const JfVae *v);
uint32_t vae_out_h(const JfVae *v);     /* latent_h * 2^(number of upsamplers) */
uint32_t vae_out_w(const JfVae *v);
float vae_scaling_factor(const JfVae *v);
uint64_t vae_weight_bytes(const JfVae *v);

/* Decodes n latents: latent fp32 [n, 4, h, w] NCHW in the *model* space, i.e. the z of the Euler
 * loop, NOT yet divided by the scaling factor (vae_decode applies z / scaling_factor
 * itself); out_rgb fp32 [n, 3, H, W] NCHW, the decoder output before any clipping
 * (nominally [-1, 1]). The latent is not modified.
 *
 * Records AND submits: the work goes to the GPU in several submits of bounded size (see
 * vae_set_submit_flops) so that no single submit runs long enough to trip a driver watchdog,
 * with `cancel` (may be NULL) checked between them. seq is begun here and is idle on return.
 * gpu_ms (may be NULL) has the GPU time of every submit added to it. Returns FALSE with error
 * set if n or the tensors do not fit (nothing recorded), on cancel (G_IO_ERROR_CANCELLED), or
 * when a submit fails (device lost, ...). */
gboolean vae_decode(JfVae *v, VkrtSeq *seq, uint32_t n, VkrtTensor latent, VkrtTensor out_rgb,
                    GCancellable *cancel, double *gpu_ms, GError **error);

/* Work (FLOPs, as the ops count them) recorded before vae_decode cuts a submit; 0 restores the
 * device's default (budget_submit_flops). A single op larger than this is one submit on its
 * own (at 384 px the largest, a 3x3 conv of 128 channels at 384x384, is 43.5 GFLOP). Tests
 * lower it to exercise the cuts. */
void vae_set_submit_flops(JfVae *v, uint64_t flops);

G_END_DECLS
