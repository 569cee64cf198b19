/* config: the model folder's JSON files (config.json, preprocessor_config.json,
 * processor_config.json, special_tokens_map.json / tokenizer_config.json) and the VAE folder's
 * config.json, read with json-glib. Absent keys take the documented library defaults (LlamaConfig,
 * VLMImageProcessor, VLChatProcessor, AutoencoderKL); wrong types or impossible values are errors
 * naming the file and the key. */
#pragma once
#include <glib.h>
#include <stdbool.h>
#include "safetensors.h"   /* JF_LOAD_ERROR */

G_BEGIN_DECLS

typedef struct {
  int hidden, n_layers, n_heads, n_kv_heads, head_dim, intermediate, vocab, max_pos;
  float rms_eps, rope_theta;
  bool attention_bias;         /* q/k/v/o projections carry biases (LlamaConfig.attention_bias) */
} JfLlmConfig;

typedef struct {
  int image_size, patch, width, layers, heads, mlp_dim;  /* layers = blocks actually run (select_layer) */
  float ln_eps;
  bool pixel_norm;             /* tower params carry pixel_mean/pixel_std: an extra normalisation */
  float pixel_mean[3], pixel_std[3];
} JfSiglipConfig;

typedef struct {
  int in_channels, channels, kernel, stride, padding, layers_in_middle, hidden;
  float norm_eps;
  bool use_bias;               /* the ConvNeXt blocks' and time embedding's biases */
} JfGenEncConfig;

typedef struct {
  int in_channels, channels, out_channels, upsamples, layers_in_middle, hidden;
  float norm_eps;
  bool use_bias;               /* the ConvNeXt blocks' and unpatch_conv's biases */
} JfGenDecConfig;

typedef struct {
  /* preprocessor_config.json */
  int image_size, min_size;
  float image_mean[3], image_std[3], rescale;
  bool do_normalize;
  int background[3];           /* int(mean*255): the processor recomputes it from the mean */
  /* processor_config.json */
  char *image_tag, *image_start_tag, *image_end_tag, *image_gen_tag, *sft_format;
  int num_image_tokens;
  bool add_special_token;
  /* special_tokens_map.json (fallback tokenizer_config.json) */
  char *bos_token, *eos_token, *pad_token;  /* pad_token may be NULL */
} JfProcessorConfig;

typedef struct {
  JfLlmConfig llm;
  JfSiglipConfig siglip;
  JfGenEncConfig gen_enc;
  JfGenDecConfig gen_dec;
  JfProcessorConfig proc;
} JfModelConfig;

#define JF_VAE_MAX_BLOCKS 8
typedef struct {
  int n_blocks;
  int block_out_channels[JF_VAE_MAX_BLOCKS];
  int layers_per_block, norm_groups, latent_channels, out_channels;
  float scaling_factor;
  /* diffusers' use_post_quant_conv / mid_block_add_attention (default true; SDXL-VAE: both) */
  bool post_quant_conv, mid_attention;
} JfVaeConfig;

/* Reads every JSON file of a JanusFlow folder. Errors name the file and the key; a folder that
 * holds another model (model_type / architectures) is reported as such. */
JfModelConfig *config_load_model(const char *dir, GError **error);
void config_free_model(JfModelConfig *c);
JfVaeConfig *config_load_vae(const char *dir, GError **error);
void config_free_vae(JfVaeConfig *c);

G_END_DECLS
