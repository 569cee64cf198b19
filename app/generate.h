/* generate: text-to-image by rectified flow (MODEL.md §5.2): the CFG batch, Euler steps with the
 * prompt's K/V computed once, the SDXL-VAE decode, live previews and steering.
 *
 * Synchronous: the GUI runs gen_run on a worker thread. JfGenControl is the thread-safe steering
 * wheel: the GUI changes the CFG weight or the remaining step count while a run goes on, and the
 * change takes effect at the next step.
 *
 * Schedule when the step count changes mid-run: with k steps done, the current time is
 * s = t_k/1000 in [0, 1); the remaining n' steps cover [s, 1] uniformly, i.e. step j of the
 * rest uses t = 1000 (s + j (1 - s)/n') and dt = (1 - s)/n'. Without a change this is exactly
 * t = 1000 k/N, dt = 1/N. */
#pragma once
#include <gio/gio.h>
#include "model.h"
#include "image.h"

G_BEGIN_DECLS

typedef enum {
  JF_PREVIEW_NONE = 0,
  JF_PREVIEW_FAST,   /* linear latent -> RGB of the x0 estimate, nearest-upscaled to the image size */
  JF_PREVIEW_VAE,    /* the full VAE on the x0 estimate every `preview_every` steps, FAST otherwise */
} JfPreviewMode;

typedef struct {
  const char *prompt;
  int steps;                 /* default 30 */
  float cfg;                 /* default 2 */
  uint64_t seed;             /* noise from our own RNG (rng.h), unless noise is given */
  int batch;                 /* images per run, default 1 */
  const float *noise;        /* optional initial latents [batch, 4, h, w] (--noise) */
  JfPreviewMode preview;
  int preview_every;         /* for JF_PREVIEW_VAE */
} JfGenParams;

JfGenParams gen_params_defaults(void);

typedef struct JfGenControl JfGenControl;
JfGenControl *gen_control_new(float cfg, int steps);
void gen_control_free(JfGenControl *c);
void gen_control_set_cfg(JfGenControl *c, float cfg);
void gen_control_set_steps(JfGenControl *c, int total_steps);  /* total, including steps done */
float gen_control_get_cfg(JfGenControl *c);
int gen_control_get_steps(JfGenControl *c);

typedef struct {
  int step;                  /* 0-based index of the step just finished */
  int steps;                 /* total steps as currently planned */
  float t;                   /* the t (0..1000) this step evaluated */
  float cfg;                 /* the CFG weight this step used */
  double gpu_ms;             /* GPU time of the step */
  double wall_ms;
  const JfImage *preview;    /* preview of the x0 estimate of image 0 (NULL if JF_PREVIEW_NONE);
                                valid during the callback only */
} JfGenStep;
typedef void (*JfGenStepFunc)(const JfGenStep *info, void *user);

typedef struct JfGen JfGen;

/* The latent shape the model works on: channels, and by default h = w = sqrt(num_image_tokens) *
 * stride of the generation encoder's patchify conv (JanusFlow-1.3B: 24 * 2 = 48, the demo's
 * 384 px); model_ensure_gen_latent sets another. */
void gen_latent_size(const JfModel *m, int *channels, int *h, int *w);

/* Buffers for up to max_batch images of the model's latent size. Needs the LLM, the generation
 * parts and the VAE loaded. */
JfGen *gen_new(JfModel *m, int max_batch, GError **error);
void gen_free(JfGen *g);

/* Runs one generation. control may be NULL (fixed cfg/steps from params). On success
 * *images gets batch new images (caller frees each with image_free and the array with g_free).
 * Cancel: G_IO_ERROR_CANCELLED, checked between steps and between layers of a step; the GPU is
 * left idle and g stays usable. With dump_dir set, writes prompt_ids.npy, velocity_0.npy,
 * latent.npy and image.npy (the fixture format). */
gboolean gen_run(JfGen *g, const JfGenParams *p, JfGenControl *control, JfGenStepFunc on_step,
                 void *user, GCancellable *cancel, JfImage ***images, GError **error);
void gen_set_dump_dir(JfGen *g, const char *dir);
/* Steps are recorded once per run (one command buffer per submit part) and replayed while the
 * shapes stay the same; the per-step values (cfg, dt, t) are read from device memory. FALSE
 * re-records every step instead (the tests check both give the same images). Default TRUE. */
void gen_set_replay(JfGen *g, gboolean replay);

/* After a run (or a cancelled one that finished at least one step): a preview of image `index`
 * from the last step's two velocities combined with another CFG weight, without running the
 * model again. NULL if there is no step to use. */
JfImage *gen_preview_with_cfg(JfGen *g, int index, float cfg);

G_END_DECLS
