/* bench: runs and times the stages of `janusflow bench` on a loaded model. Every timed run is
 * measured twice: GPU time (timestamp queries around each submit of the run, summed) and wall
 * time (host clock around the whole run, including recording, uploads and read-backs). Each stage
 * runs `warmup` untimed times first; the FLOPs the op layer counted and the queue submits of the
 * last run are kept next to the times.
 *
 * Stages mirror the reference bench (../shared/reference, `bench`): prefill = the image-chat
 * prompt through the LLM from prepared embeddings, lm_head on the last row and argmax; decode =
 * greedy one-token steps after that prefill; siglip = one image through SigLIP + aligner; euler_step
 * = one CFG step of the real gen_run loop with the prompt K/V cached; vae_decode = one latent to
 * RGB; preview = the linear latent -> RGB preview of one latent and its read-back; first_preview =
 * wall time from calling gen_run (prompt pass included) to the first step's preview in host memory,
 * with the pipelines built (the GUI's state after its warm-up), and once cold: the first run in
 * the process, which builds them (from the on-disk pipeline cache when there is one). */
#pragma once
#include "model.h"
#include "bench_cost.h"
#include "bench_synth.h"

G_BEGIN_DECLS

typedef enum {
  BENCH_PREFILL,
  BENCH_DECODE,
  BENCH_SIGLIP,
  BENCH_EULER_STEP,
  BENCH_VAE_DECODE,
  BENCH_PREVIEW,
  BENCH_FIRST_PREVIEW,
  BENCH_N_STAGES
} BenchStageId;

const char *bench_stage_name(BenchStageId id);
/* What the stage needs loaded (JF_LOAD_* bits; the VAE comes with JF_LOAD_GENERATION + a VAE folder). */
unsigned bench_stage_needs(BenchStageId id);

typedef struct {
  int warmup, repeat;
  int decode_tokens;   /* new tokens per decode run (32) */
  float cfg;           /* CFG weight of the Euler step (2) */
  int steps;           /* planned steps of a first_preview run (30; only the first runs) */
} BenchOptions;

typedef struct {
  gboolean ran;
  GArray *gpu_ms, *wall_ms;  /* double per timed run; gpu_ms is NAN without timestamp queries */
  double flops_counted;      /* per run, counted by the op layer */
  double submits;            /* queue submits per run */
  double items;              /* tokens, images or steps per run */
  const char *item_unit;     /* "tok", "img", "step" */
  BenchCost cost;            /* analytic, per run */
  /* first_preview only (else NAN): its first run, and the pipelines that run built */
  double cold_wall_ms, cold_pipelines, cold_pipeline_ms;
} BenchStage;

void bench_stage_clear(BenchStage *st);

typedef struct {
  double gemm_flops_s;       /* best over the shapes */
  uint32_t gemm_m, gemm_n, gemm_k;   /* the shape that gave it */
  double copy_bytes_s;       /* (read + written) bytes / s of a device-local buffer copy */
  uint64_t copy_size;
  gboolean gpu_timed;        /* FALSE: no timestamp queries, wall clock used */
} BenchCeiling;

/* The device's ceiling as this engine reaches it: the best vkrt_op_matmul over a few large
 * shapes (those of the 1.3B model's Euler step) and a large buffer copy. */
gboolean bench_measure_ceiling(VkrtContext *ctx, BenchCeiling *out, GError **error);

typedef struct BenchSession BenchSession;

/* Borrows m and prompts for its lifetime. */
BenchSession *bench_session_new(JfModel *m, const BenchPrompts *prompts, const BenchOptions *o);
void bench_session_free(BenchSession *s);
/* Runs one stage (warm-up + timed runs) into *out (cleared first). */
gboolean bench_session_run(BenchSession *s, BenchStageId id, BenchStage *out, GError **error);

/* Median of a double array (NAN when empty or when any value is NAN). */
double bench_median(const GArray *v);
double bench_min(const GArray *v);

G_END_DECLS
