/* siglip: the understanding image encoder on Vulkan. The timm-style SigLIP ViT that Janus builds
 * (patch-embedding conv, + position embedding, pre-norm blocks of bidirectional multi-head
 * attention and an exact-GELU MLP, final LayerNorm; the attention-pool head is not used), then the
 * understanding aligner (one Linear width -> LLM hidden). Also holds beg_of_und_embed, the row that
 * replaces the image-start token in understanding prompts. MODEL.md §4.2, §4.3.
 *
 * Ownership: JfSiglip owns its weights and scratch buffers and must be freed before its context.
 * Recording functions append work to a VkrtSeq and never submit. */
#pragma once
#include "config.h"
#include "safetensors.h"
#include "vkrt.h"

G_BEGIN_DECLS

typedef struct JfSiglip JfSiglip;

/* Uploads the tower blocks that select_layer keeps (cfg->siglip.layers), the final norm, the
 * aligner and beg_of_und_embed from f, checking each shape against cfg; allocates the scratch
 * buffers. Errors name the tensor (or the config key for impossible geometry). */
JfSiglip *siglip_new(VkrtContext *ctx, const StFile *f, const JfModelConfig *cfg, GError **error);
void siglip_free(JfSiglip *s);

/* Image tokens per image: (image_size / patch)^2. */
uint32_t siglip_n_tokens(const JfSiglip *s);
/* Side of the square input image in pixels. */
uint32_t siglip_image_size(const JfSiglip *s);
/* Width of the pre-aligner features. */
uint32_t siglip_width(const JfSiglip *s);
/* Output width (the LLM hidden size). */
uint32_t siglip_hidden(const JfSiglip *s);
/* Device bytes held by the weights. */
uint64_t siglip_weight_bytes(const JfSiglip *s);

/* Records the encoder for one image. pixels_chw: float [3, S, S] as the image preprocessor makes
 * it (the tower's own pixel_mean/pixel_std normalisation, when the config has one, is applied
 * here). out_embeds: fp32 [n_tokens, hidden], the aligned features in token order.
 * The pixels are copied into a device buffer owned by s at call time, so the sequence must be
 * submitted before the next siglip_encode on the same s. FALSE (nothing recorded) on bad sizes. */
gboolean siglip_encode(JfSiglip *s, VkrtSeq *seq, const float *pixels_chw, VkrtTensor out_embeds,
                       GError **error);

/* The pre-aligner features of the last encoded image, fp32 [n_tokens, width] (after the final
 * LayerNorm): valid once the sequence siglip_encode recorded into has been submitted, until the
 * next siglip_encode. For tests and debugging dumps. */
VkrtTensor siglip_features(const JfSiglip *s);

/* beg_of_und_embed as a bf16 device tensor [hidden], and as fp32 host values (the same bf16
 * values widened). */
VkrtTensor siglip_beg_embed(const JfSiglip *s);
const float *siglip_beg_embed_host(const JfSiglip *s);
/* Records dst[0:hidden] = float(beg_of_und_embed) (e.g. into the image-start row of a prompt's
 * input embeddings). */
void siglip_record_beg_embed(JfSiglip *s, VkrtSeq *seq, VkrtTensor dst);

G_END_DECLS
