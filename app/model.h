/* model: one loaded JanusFlow folder (+ optional VAE folder): configs, tokenizer with the
 * processor's runtime tags, and the parts on the device. The engine's other modules borrow from
 * it; it owns them all. */
#pragma once
#include "config.h"
#include "tokenizer.h"
#include "safetensors.h"
#include "llm.h"
#include "vkrt.h"

G_BEGIN_DECLS

typedef struct JfSiglip JfSiglip;
typedef struct JfUvit JfUvit;
typedef struct JfVae JfVae;

typedef struct {
  int32_t bos, eos, pad;
  int32_t image_tag, image_gen_tag, image_start_tag, image_end_tag;
} JfSpecialIds;

enum {
  JF_LOAD_LLM = 1 << 0,
  JF_LOAD_VISION = 1 << 1,      /* SigLIP + understanding aligner */
  JF_LOAD_GENERATION = 1 << 2,  /* UViT encoder/decoder (+ VAE when a folder is given) */
  JF_LOAD_ALL = 7,
};

/* progress: fraction 0..1 and a short label; may be NULL. Called on the loading thread. */
typedef void (*JfProgressFunc)(double fraction, const char *what, void *user);

typedef struct {
  char *dir, *vae_dir;
  JfModelConfig *cfg;
  JfVaeConfig *vae_cfg;
  JfTokenizer *tok;
  JfSpecialIds ids;
  StFile *st;
  JfLlm *llm;
  JfSiglip *siglip;
  JfUvit *uvit;
  JfVae *vae;
  int gen_batch;     /* images the VAE's scratch holds */
  int gen_lat_h, gen_lat_w;  /* latent size the generation parts were made for; 0: the default */
  VkrtContext *ctx;  /* borrowed */
} JfModel;

/* Reads and checks the folders, then uploads the parts named in `what`. Errors name the file and
 * the problem (missing files, wrong model, tokenizer that does not match, out of memory). */
JfModel *model_load(VkrtContext *ctx, const char *dir, const char *vae_dir, unsigned what,
                    JfProgressFunc progress, void *user, GError **error);

/* Load-time choices; all-zero = the defaults. */
typedef struct {
  JfWeightFormat weights;  /* JF_WEIGHTS_Q8_0: the LLM's Linear weights in 8 bits (llm.h) */
} JfLoadOptions;

/* model_load with options (opt NULL = defaults); the fit check counts the chosen formats. */
JfModel *model_load_opts(VkrtContext *ctx, const char *dir, const char *vae_dir, unsigned what,
                         const JfLoadOptions *opt, JfProgressFunc progress, void *user, GError **error);
void model_free(JfModel *m);

/* Bytes the weights of the parts in `what` take on the device (bf16, the LLM's in format wf),
 * from a checkpoint's tensor table: what the fit check of model_load_opts counts. */
uint64_t model_weight_bytes(const StFile *st, unsigned what, JfWeightFormat wf);
/* Checks the folder without touching the device (the GUI's model setup screen). */
gboolean model_check_folder(const char *dir, const char *vae_dir, GError **error);

G_END_DECLS

/* Internal to the engine (app/model_parts.c): loads / frees the vision and generation parts. */
gboolean model_load_parts(JfModel *m, unsigned what, JfProgressFunc progress, void *user, GError **error);
void model_free_parts(JfModel *m);
/* Makes the generation parts hold batch images (re-creates their scratch if needed). */
gboolean model_ensure_gen_batch(JfModel *m, int batch, GError **error);
/* Makes the generation parts work on latents of h x w (re-creates the UViT and the VAE for it if
 * it differs): a noise file may give another size than the default (gen_latent_size). Errors
 * name the size the generation encoder cannot take. */
gboolean model_ensure_gen_latent(JfModel *m, int h, int w, GError **error);
