#include "bench.h"
#include "budget.h"
#include "generate.h"
#include "ops.h"
#include "ops_gen.h"
#include "siglip.h"
#include "vae.h"
#include "rng.h"
#include <math.h>
#include <string.h>
#include <time.h>

static const char *const stage_names[BENCH_N_STAGES] = {
  "prefill", "decode", "siglip", "euler_step", "vae_decode", "preview", "first_preview",
};

const char *bench_stage_name(BenchStageId id) { return id < BENCH_N_STAGES ? stage_names[id] : "?"; }

unsigned bench_stage_needs(BenchStageId id)
{
  switch (id) {
  case BENCH_PREFILL:
  case BENCH_DECODE: return JF_LOAD_LLM | JF_LOAD_VISION;  /* the prompt's image rows come from SigLIP */
  case BENCH_SIGLIP: return JF_LOAD_VISION;
  case BENCH_EULER_STEP:
  case BENCH_FIRST_PREVIEW: return JF_LOAD_LLM | JF_LOAD_GENERATION;
  case BENCH_VAE_DECODE: return JF_LOAD_GENERATION;
  default: return 0;
  }
}

void bench_stage_clear(BenchStage *st)
{
  if (st->gpu_ms) g_array_unref(st->gpu_ms);
  if (st->wall_ms) g_array_unref(st->wall_ms);
  memset(st, 0, sizeof *st);
  st->cold_wall_ms = st->cold_pipelines = st->cold_pipeline_ms = NAN;
}

static int cmp_double(const void *a, const void *b)
{
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

double bench_median(const GArray *v)
{
  if (!v || v->len == 0)
    return NAN;
  double *c = g_memdup2(v->data, v->len * sizeof(double));
  for (guint i = 0; i < v->len; i++)
    if (isnan(c[i])) {
      g_free(c);
      return NAN;
    }
  qsort(c, v->len, sizeof(double), cmp_double);
  double m = v->len % 2 ? c[v->len / 2] : 0.5 * (c[v->len / 2 - 1] + c[v->len / 2]);
  g_free(c);
  return m;
}

double bench_min(const GArray *v)
{
  double m = NAN;
  for (guint i = 0; v && i < v->len; i++) {
    double x = g_array_index(v, double, i);
    if (isnan(x))
      return NAN;
    m = isnan(m) || x < m ? x : m;
  }
  return m;
}

/* Nanoseconds, not g_get_monotonic_time's microseconds: the preview stage's read-back of a small
 * latent from mapped memory takes less than one microsecond. */
static double now_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* GPU time of everything the sequence's last submit ran: the sum of its marked intervals. */
static double seq_gpu_ms(VkrtSeq *seq)
{
  if (!vkrt_context_info(vkrt_seq_context(seq))->has_timestamps)
    return NAN;
  return vkrt_seq_gpu_ms(seq);
}

/* Ends a recording with a mark (so that all of it is timed), submits and adds its GPU time. */
static gboolean submit_timed(VkrtSeq *seq, const char *label, double *gpu_ms, GError **error)
{
  vkrt_seq_mark(seq, label);
  if (!vkrt_seq_submit(seq, error))
    return FALSE;
  *gpu_ms += seq_gpu_ms(seq);
  return TRUE;
}

/* --- ceiling ---------------------------------------------------------------------------------- */

static gboolean time_gemm(VkrtContext *ctx, VkrtSeq *seq, uint32_t M, uint32_t N, uint32_t K, int warmup,
                          double *best_s, gboolean *gpu_timed, GError **error)
{
  VkrtBuffer *x = NULL, *w = NULL, *y = NULL;
  gboolean ok = FALSE;
  if (!(x = vkrt_buffer_new(ctx, (uint64_t)M * K * 4, error)) || !(w = vkrt_buffer_new(ctx, (uint64_t)N * K * 2, error)) ||
      !(y = vkrt_buffer_new(ctx, (uint64_t)M * N * 4, error)))
    goto out;
  /* finite, non-zero operands: 1.0 activations, bf16 0.0078 weights */
  if (!vkrt_buffer_fill(x, 0, vkrt_buffer_size(x), 0x3f800000u, error) ||
      !vkrt_buffer_fill(w, 0, vkrt_buffer_size(w), 0x3c003c00u, error))
    goto out;
  *best_s = INFINITY;
  for (int r = 0; r < warmup + 2; r++) {
    double gpu = 0, t0 = now_ms();
    vkrt_seq_begin(seq);
    vkrt_op_matmul(seq, vkrt_tensor(y), vkrt_tensor(x), vkrt_tensor(w), vkrt_tensor_none(), M, N, K, 0);
    if (!submit_timed(seq, "gemm", &gpu, error))
      goto out;
    double s = isnan(gpu) ? (now_ms() - t0) / 1000.0 : gpu / 1000.0;
    *gpu_timed = !isnan(gpu);
    if (r >= warmup && s < *best_s)
      *best_s = s;
  }
  ok = TRUE;
out:
  if (x) vkrt_buffer_free(x);
  if (w) vkrt_buffer_free(w);
  if (y) vkrt_buffer_free(y);
  return ok;
}

gboolean bench_measure_ceiling(VkrtContext *ctx, BenchCeiling *out, GError **error)
{
  /* the 1.3B Euler step's GEMMs: q/o projections and MLP up over 2 x 577 rows, MLP down over a
   * 640-token prompt */
  static const uint32_t shapes[][3] = { { 1154, 2048, 2048 }, { 1154, 5632, 2048 }, { 640, 2048, 5632 } };
  memset(out, 0, sizeof *out);
  VkrtSeq *seq = vkrt_seq_new(ctx, error);
  if (!seq)
    return FALSE;
  gboolean ok = FALSE;
  for (size_t i = 0; i < G_N_ELEMENTS(shapes); i++) {
    double s;
    /* one untimed run first builds the pipeline, which all shapes share */
    if (!time_gemm(ctx, seq, shapes[i][0], shapes[i][1], shapes[i][2], i == 0, &s, &out->gpu_timed, error))
      goto out;
    double f = 2.0 * shapes[i][0] * shapes[i][1] * shapes[i][2] / s;
    if (f > out->gemm_flops_s) {
      out->gemm_flops_s = f;
      out->gemm_m = shapes[i][0];
      out->gemm_n = shapes[i][1];
      out->gemm_k = shapes[i][2];
    }
  }
  {
    const VkrtDeviceInfo *di = vkrt_context_info(ctx);
    uint64_t size = 256ull << 20;
    size = MIN(size, di->device_local_bytes / 8);
    if (di->max_alloc)
      size = MIN(size, di->max_alloc);
    size &= ~(uint64_t)0xffff;
    VkrtBuffer *a = vkrt_buffer_new(ctx, size, error), *b = a ? vkrt_buffer_new(ctx, size, error) : NULL;
    gboolean cok = a && b && vkrt_buffer_fill(a, 0, size, 0x01020304u, error);
    double best = INFINITY;
    for (int r = 0; cok && r < 4; r++) {
      double gpu = 0, t0 = now_ms();
      vkrt_seq_begin(seq);
      vkrt_seq_copy(seq, vkrt_tensor(b), vkrt_tensor(a), size);
      cok = submit_timed(seq, "copy", &gpu, error);
      double s = isnan(gpu) ? (now_ms() - t0) / 1000.0 : gpu / 1000.0;
      if (cok && r > 0 && s < best)
        best = s;
    }
    if (a) vkrt_buffer_free(a);
    if (b) vkrt_buffer_free(b);
    if (!cok)
      goto out;
    out->copy_size = size;
    out->copy_bytes_s = 2.0 * (double)size / best;
  }
  ok = TRUE;
out:
  vkrt_seq_free(seq);
  return ok;
}

/* --- session --------------------------------------------------------------------------------- */

struct BenchSession {
  JfModel *m;
  const BenchPrompts *pr;
  BenchOptions o;
  VkrtContext *ctx;
  VkrtSeq *seq;
  VkrtSeq *seq_next;   /* decode: the next token is recorded here while `seq` runs, as chat does */
  /* chat: prepared prompt embeddings, the working rows, the cache, the sampled id */
  gboolean chat_ready, prefilled;
  uint32_t n_chat, chunk;
  JfKvCache *kv;
  VkrtBuffer *x0, *x, *pos, *logits, *pick, *dids, *dpos;
  /* vision / generation inputs */
  float *pixels;
  VkrtBuffer *img, *latent, *rgb, *rgba;
  void *rgba_host;     /* preview: where the read-back lands, allocated once as gen_run does */
  JfGen *gen;          /* first_preview: kept, as the GUI keeps its generator */
};

BenchSession *bench_session_new(JfModel *m, const BenchPrompts *prompts, const BenchOptions *o)
{
  BenchSession *s = g_new0(BenchSession, 1);
  s->m = m;
  s->pr = prompts;
  s->o = *o;
  s->ctx = m->ctx;
  return s;
}

void bench_session_free(BenchSession *s)
{
  if (!s)
    return;
  llm_kv_free(s->kv);
  VkrtBuffer **bufs[] = { &s->x0, &s->x, &s->pos, &s->logits, &s->pick, &s->dids, &s->dpos, &s->img, &s->latent,
                          &s->rgb, &s->rgba };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
  if (s->seq)
    vkrt_seq_free(s->seq);
  if (s->seq_next)
    vkrt_seq_free(s->seq_next);
  gen_free(s->gen);
  g_free(s->pixels);
  g_free(s->rgba_host);
  g_free(s);
}

static gboolean ensure_seq(BenchSession *s, GError **error)
{
  return s->seq || (s->seq = vkrt_seq_new(s->ctx, error)) != NULL;
}

/* Random pixels in [-1, 1] as the preprocessor would hand them over (the reference bench also
 * uses random pixels). */
static const float *bench_pixels(BenchSession *s)
{
  if (!s->pixels) {
    uint32_t S = (uint32_t)s->m->cfg->siglip.image_size;
    s->pixels = g_new(float, 3 * (gsize)S * S);
    JfRng rng;
    rng_init(&rng, 0);
    for (gsize i = 0; i < 3 * (gsize)S * S; i++)
      s->pixels[i] = (float)(rng_uniform(&rng) * 2.0 - 1.0);
  }
  return s->pixels;
}

/* The chat prompt's input embeddings, prepared once (untimed): token rows, then the image block
 * (image-start row = beg_of_und_embed, image rows = SigLIP features of random pixels). */
static gboolean chat_prepare(BenchSession *s, GError **error)
{
  if (s->chat_ready)
    return TRUE;
  JfModel *m = s->m;
  const JfLlmConfig *lc = llm_config(m->llm);
  const uint64_t H = lc->hidden, row = H * 4;
  s->n_chat = s->pr->chat_ids->len;
  s->chunk = MIN(s->n_chat, llm_max_rows(m->llm));
  uint32_t cap = s->n_chat + (uint32_t)s->o.decode_tokens + 1;
  if (!ensure_seq(s, error) || !(s->kv = llm_kv_new(m->llm, 1, cap, error)) ||
      !(s->x0 = vkrt_buffer_new(s->ctx, s->n_chat * row, error)) ||
      !(s->x = vkrt_buffer_new(s->ctx, s->chunk * row, error)) ||
      !(s->pos = vkrt_buffer_new(s->ctx, (uint64_t)s->n_chat * 4, error)) ||
      !(s->logits = vkrt_buffer_new(s->ctx, (uint64_t)lc->vocab * 4, error)) ||
      !(s->pick = vkrt_buffer_new_host(s->ctx, 16, error)) || !(s->dids = vkrt_buffer_new_host(s->ctx, 16, error)) ||
      !(s->dpos = vkrt_buffer_new_host(s->ctx, 16, error)))
    return FALSE;
  int32_t *pos = g_new(int32_t, s->n_chat);
  for (uint32_t i = 0; i < s->n_chat; i++)
    pos[i] = (int32_t)i;
  gboolean ok = vkrt_buffer_write(s->pos, 0, pos, (uint64_t)s->n_chat * 4, error);
  g_free(pos);
  VkrtBuffer *ids = ok ? vkrt_buffer_new(s->ctx, (uint64_t)s->n_chat * 4, error) : NULL;
  ok = ids && vkrt_buffer_write(ids, 0, s->pr->chat_ids->data, (uint64_t)s->n_chat * 4, error);
  if (ok) {
    vkrt_seq_begin(s->seq);
    llm_record_embed(m->llm, s->seq, vkrt_tensor(ids), s->n_chat, vkrt_tensor(s->x0));
    ok = vkrt_seq_submit(s->seq, error);
  }
  if (ok && m->siglip) {
    uint32_t T = siglip_n_tokens(m->siglip);
    ok = T == s->pr->image_tokens && (s->img = vkrt_buffer_new(s->ctx, T * row, error)) != NULL;
    if (ok) {
      vkrt_seq_begin(s->seq);
      ok = siglip_encode(m->siglip, s->seq, bench_pixels(s), vkrt_tensor(s->img), error);
    }
    if (ok) {
      VkrtTensor x0 = vkrt_tensor(s->x0);
      siglip_record_beg_embed(m->siglip, s->seq, vkrt_tensor_sub(x0, s->pr->image_start * row, row));
      vkrt_seq_copy(s->seq, vkrt_tensor_sub(x0, (s->pr->image_start + 1) * row, T * row), vkrt_tensor(s->img), T * row);
      ok = vkrt_seq_submit(s->seq, error);
    }
  }
  if (ids)
    vkrt_buffer_free(ids);
  s->chat_ready = ok;
  return ok;
}

/* One prefill as chat does it: the prompt in chunks of at most llm_max_rows rows, each in submits
 * of at most budget_submit_flops() of layers, then lm_head on the last row and argmax. */
static gboolean prefill_once(BenchSession *s, double *gpu_ms, GError **error)
{
  JfLlm *llm = s->m->llm;
  const uint64_t row = (uint64_t)llm_config(llm)->hidden * 4;
  for (uint32_t done = 0; done < s->n_chat;) {
    uint32_t T = MIN(s->chunk, s->n_chat - done);
    VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(s->x), 0, T * row);
    vkrt_seq_begin(s->seq);
    vkrt_seq_copy(s->seq, x, vkrt_tensor_sub(vkrt_tensor(s->x0), done * row, T * row), T * row);
    BudgetMeter meter;
    budget_meter_init(&meter, s->ctx, budget_submit_flops(s->ctx));
    for (int l = 0; l < llm_n_layers(llm); l++) {
      if (l > 0 && budget_meter_full(&meter)) {
        if (!submit_timed(s->seq, "prefill", gpu_ms, error))
          return FALSE;
        vkrt_seq_begin(s->seq);
        budget_meter_restart(&meter);
      }
      if (!llm_record_layers(llm, s->seq, s->kv, x, vkrt_tensor_sub(vkrt_tensor(s->pos), done * 4ull, T * 4ull),
                             vkrt_tensor_none(), T, done, l, l + 1, error))
        return FALSE;
    }
    llm_record_final_norm(llm, s->seq, x, T, x);
    done += T;
    if (done == s->n_chat) {
      llm_record_logits(llm, s->seq, vkrt_tensor_sub(x, (T - 1) * row, row), 1, vkrt_tensor(s->logits));
      vkrt_op_argmax(s->seq, vkrt_tensor(s->pick), vkrt_tensor(s->logits), 1, (uint32_t)llm_config(llm)->vocab);
    }
    if (!submit_timed(s->seq, "prefill", gpu_ms, error))
      return FALSE;
  }
  s->prefilled = TRUE;
  return TRUE;
}

/* Records one greedy decode step at cache position pos: embed the id in dids, one-token
 * forward, lm_head, argmax into dids. */
static gboolean record_decode_step(BenchSession *s, VkrtSeq *seq, uint32_t pos, GError **error)
{
  JfLlm *llm = s->m->llm;
  const uint64_t row = (uint64_t)llm_config(llm)->hidden * 4;
  VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(s->x), 0, row);
  vkrt_seq_begin(seq);
  if (!llm_record_token(llm, seq, s->kv, vkrt_tensor(s->dids), vkrt_tensor(s->dpos), pos, x, x, error))
    return FALSE;
  llm_record_logits(llm, seq, x, 1, vkrt_tensor(s->logits));
  vkrt_op_argmax(seq, vkrt_tensor(s->dids), vkrt_tensor(s->logits), 1, (uint32_t)llm_config(llm)->vocab);
  vkrt_seq_mark(seq, "decode");
  return TRUE;
}

/* Greedy decode after the prefill, as chat does per token: the host reads the id back and
 * writes it with its position, submits the step recorded while the previous one ran, and
 * records the next one while this one runs (two sequences in turn). Always restarts at the
 * end of the prompt. */
static gboolean decode_once(BenchSession *s, double *gpu_ms, GError **error)
{
  uint32_t id = 0;
  if (!vkrt_buffer_read(s->pick, 0, &id, 4, error))
    return FALSE;
  if (!s->seq_next && !(s->seq_next = vkrt_seq_new(s->ctx, error)))
    return FALSE;
  VkrtSeq *run = s->seq, *next = s->seq_next;
  if (s->o.decode_tokens > 0 && !record_decode_step(s, run, s->n_chat, error))
    return FALSE;
  for (int i = 0; i < s->o.decode_tokens; i++) {
    int32_t posv = (int32_t)(s->n_chat + (uint32_t)i);
    if (!vkrt_buffer_write(s->dids, 0, &id, 4, error) || !vkrt_buffer_write(s->dpos, 0, &posv, 4, error) ||
        !vkrt_seq_submit_async(run, error))
      return FALSE;
    gboolean rec_ok = i + 1 >= s->o.decode_tokens || record_decode_step(s, next, (uint32_t)posv + 1, error);
    if (!vkrt_seq_wait(run, rec_ok ? error : NULL) || !rec_ok || !vkrt_buffer_read(s->dids, 0, &id, 4, error))
      return FALSE;
    *gpu_ms += seq_gpu_ms(run);
    VkrtSeq *t = run;
    run = next;
    next = t;
  }
  return TRUE;
}

static gboolean siglip_once(BenchSession *s, double *gpu_ms, GError **error)
{
  vkrt_seq_begin(s->seq);
  return siglip_encode(s->m->siglip, s->seq, bench_pixels(s), vkrt_tensor(s->img), error) &&
         submit_timed(s->seq, "siglip", gpu_ms, error);
}

/* A standard-normal latent of the model's latent size (the z of the Euler loop). */
static gboolean latent_prepare(BenchSession *s, GError **error)
{
  if (s->latent)
    return TRUE;
  int c, h, w;
  gen_latent_size(s->m, &c, &h, &w);
  gsize n = (gsize)c * h * w;
  float *z = g_new(float, n);
  JfRng rng;
  rng_init(&rng, 1);
  for (gsize i = 0; i < n; i++)
    z[i] = (float)rng_normal(&rng);
  gboolean ok = ensure_seq(s, error) && (s->latent = vkrt_buffer_new(s->ctx, n * 4, error)) &&
                vkrt_buffer_write(s->latent, 0, z, n * 4, error);
  g_free(z);
  return ok;
}

static gboolean vae_once(BenchSession *s, double *gpu_ms, GError **error)
{
  return vae_decode(s->m->vae, s->seq, 1, vkrt_tensor(s->latent), vkrt_tensor(s->rgb), NULL, gpu_ms, error);
}

/* What a step's fast preview (the GUI's default) costs the app beyond the step itself: the
 * step's cfg_euler pass already wrote the RGBA preview, so what is left is gen_run's read-back of
 * it to the host. A transfer, not a recorded submit: there is no GPU time to take. Not included:
 * the host-side upscale to the image size; a VAE preview (every k steps) costs a vae_decode and a
 * larger read-back instead. */
static gboolean preview_once(BenchSession *s, double *gpu_ms, GError **error)
{
  *gpu_ms = NAN;
  return vkrt_buffer_read(s->rgba, 0, s->rgba_host, vkrt_buffer_size(s->rgba), error);
}

typedef gboolean (*RunFn)(BenchSession *s, double *gpu_ms, GError **error);

/* warm-up + timed runs of fn; counters of the last run */
static gboolean run_loop(BenchSession *s, RunFn fn, BenchStage *st, GError **error)
{
  for (int r = 0; r < s->o.warmup + s->o.repeat; r++) {
    uint64_t f0 = vkrt_context_flops(s->ctx), n0 = vkrt_context_submits(s->ctx);
    double gpu = 0, t0 = now_ms();
    if (!fn(s, &gpu, error))
      return FALSE;
    double wall = now_ms() - t0;
    st->flops_counted = (double)(vkrt_context_flops(s->ctx) - f0);
    st->submits = (double)(vkrt_context_submits(s->ctx) - n0);
    if (r >= s->o.warmup) {
      g_array_append_val(st->gpu_ms, gpu);
      g_array_append_val(st->wall_ms, wall);
    }
  }
  return TRUE;
}

typedef struct {
  BenchSession *s;
  BenchStage *st;
  int warmup;
  uint64_t flops, submits;
} EulerWatch;

static void euler_on_step(const JfGenStep *info, void *user)
{
  EulerWatch *w = user;
  uint64_t f = vkrt_context_flops(w->s->ctx), n = vkrt_context_submits(w->s->ctx);
  /* the first callback's counters also hold the prompt's K/V pass: steps are told apart by the
   * difference between consecutive callbacks */
  if (info->step > 0) {
    w->st->flops_counted = (double)(f - w->flops);
    w->st->submits = (double)(n - w->submits);
  }
  w->flops = f;
  w->submits = n;
  if (info->step >= w->warmup) {
    double gpu = vkrt_context_info(w->s->ctx)->has_timestamps ? info->gpu_ms : NAN, wall = info->wall_ms;
    g_array_append_val(w->st->gpu_ms, gpu);
    g_array_append_val(w->st->wall_ms, wall);
  }
}

/* The real generation loop (gen_run) with warm-up + repeat steps: every step after the first is
 * the same work (only t changes), so each is one sample. Its prompt pass and final VAE decode are
 * not timed. At least one warm-up step: the counted FLOPs are a difference of two steps. */
static gboolean euler_run(BenchSession *s, BenchStage *st, GError **error)
{
  JfGen *g = gen_new(s->m, 1, error);
  if (!g)
    return FALSE;
  EulerWatch w = { s, st, MAX(s->o.warmup, 1), 0, 0 };
  JfGenParams p = gen_params_defaults();
  p.prompt = s->pr->gen_prompt;
  p.steps = w.warmup + s->o.repeat;
  p.cfg = s->o.cfg;
  p.seed = 0;
  p.preview = JF_PREVIEW_NONE;
  JfImage **images = NULL;
  gboolean ok = gen_run(g, &p, NULL, euler_on_step, &w, NULL, &images, error);
  if (images) {
    image_free(images[0]);
    g_free(images);
  }
  gen_free(g);
  return ok;
}

typedef struct {
  gint64 t0;
  double ms;             /* < 0 until the first preview */
  GCancellable *cancel;
} FirstWatch;

static void first_on_step(const JfGenStep *info, void *user)
{
  FirstWatch *w = user;
  if (info->preview && w->ms < 0) {
    w->ms = (double)(g_get_monotonic_time() - w->t0) / 1000.0;
    /* the rest of the run (later steps, the VAE) is not what this stage times */
    g_cancellable_cancel(w->cancel);
  }
}

/* One Generate as the GUI starts it, up to its first preview: gen_run from the prompt (tokenizer,
 * prompt K/V pass, noise upload) through step 0 with the fast preview read back and upscaled. */
static gboolean first_preview_once(BenchSession *s, double *wall_ms, GError **error)
{
  if (!s->gen && !(s->gen = gen_new(s->m, 1, error)))
    return FALSE;
  JfGenParams p = gen_params_defaults();
  p.prompt = s->pr->gen_prompt;
  p.steps = s->o.steps > 0 ? s->o.steps : 30;
  p.cfg = s->o.cfg;
  p.seed = 0;
  p.preview = JF_PREVIEW_FAST;
  FirstWatch w = { g_get_monotonic_time(), -1.0, g_cancellable_new() };
  JfImage **images = NULL;
  GError *e = NULL;
  gboolean ok = gen_run(s->gen, &p, NULL, first_on_step, &w, w.cancel, &images, &e);
  if (images) {
    image_free(images[0]);
    g_free(images);
  }
  g_object_unref(w.cancel);
  if (!ok && w.ms >= 0 && g_error_matches(e, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_clear_error(&e);
    ok = TRUE;
  }
  if (!ok) {
    g_propagate_error(error, e);
    return FALSE;
  }
  if (w.ms < 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the run ended without a preview");
    return FALSE;
  }
  *wall_ms = w.ms;
  return TRUE;
}

/* The cold run first (its pipelines counted), then warm-up + timed runs. No GPU column: the
 * interval is host-side by definition (tokenizer, uploads, submits, the read-back). */
static gboolean first_preview_run(BenchSession *s, BenchStage *st, GError **error)
{
  uint64_t p0 = vkrt_context_pipelines_created(s->ctx);
  double pm0 = vkrt_context_pipeline_ms(s->ctx), ms = 0;
  if (!first_preview_once(s, &ms, error))
    return FALSE;
  st->cold_wall_ms = ms;
  st->cold_pipelines = (double)(vkrt_context_pipelines_created(s->ctx) - p0);
  st->cold_pipeline_ms = vkrt_context_pipeline_ms(s->ctx) - pm0;
  for (int r = 0; r < s->o.warmup + s->o.repeat; r++) {
    uint64_t f0 = vkrt_context_flops(s->ctx), n0 = vkrt_context_submits(s->ctx);
    if (!first_preview_once(s, &ms, error))
      return FALSE;
    /* the counters run on to the cancel after step 0: close enough to the work before it */
    st->flops_counted = (double)(vkrt_context_flops(s->ctx) - f0);
    st->submits = (double)(vkrt_context_submits(s->ctx) - n0);
    if (r >= s->o.warmup) {
      double gpu = NAN;
      g_array_append_val(st->gpu_ms, gpu);
      g_array_append_val(st->wall_ms, ms);
    }
  }
  return TRUE;
}

gboolean bench_session_run(BenchSession *s, BenchStageId id, BenchStage *st, GError **error)
{
  JfModel *m = s->m;
  bench_stage_clear(st);
  st->gpu_ms = g_array_new(FALSE, FALSE, sizeof(double));
  st->wall_ms = g_array_new(FALSE, FALSE, sizeof(double));
  const char *missing = NULL;
  if ((bench_stage_needs(id) & JF_LOAD_LLM) && !m->llm) missing = "the language model";
  else if ((bench_stage_needs(id) & JF_LOAD_VISION) && !m->siglip) missing = "the vision encoder";
  else if ((id == BENCH_EULER_STEP || id == BENCH_FIRST_PREVIEW) && !m->uvit) missing = "the generation encoder/decoder";
  else if ((id == BENCH_EULER_STEP || id == BENCH_VAE_DECODE || id == BENCH_FIRST_PREVIEW) && !m->vae)
    missing = "the VAE (give --vae DIR)";
  if (missing) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "%s needs %s", bench_stage_name(id), missing);
    return FALSE;
  }
  int c, h, w;
  gen_latent_size(m, &c, &h, &w);
  /* the format the stage's caches get (llm_kv_new): their K/V bytes are part of the minimum */
  JfKvFormat kvf = llm_kv_format_for(vkrt_context_info(s->ctx)->type, (uint32_t)m->cfg->llm.head_dim);
  gboolean ok = FALSE;
  switch (id) {
  case BENCH_PREFILL:
    st->items = s->pr->chat_ids->len;
    st->item_unit = "tok";
    st->cost = bench_cost_prefill(m->cfg, kvf, s->pr->chat_ids->len);
    ok = chat_prepare(s, error) && run_loop(s, prefill_once, st, error);
    break;
  case BENCH_DECODE: {
    st->items = s->o.decode_tokens;
    st->item_unit = "tok";
    st->cost = bench_cost_decode(m->cfg, kvf, s->pr->chat_ids->len, (uint32_t)s->o.decode_tokens);
    double gpu = 0;
    ok = chat_prepare(s, error) && (s->prefilled || prefill_once(s, &gpu, error)) && run_loop(s, decode_once, st, error);
    break;
  }
  case BENCH_SIGLIP:
    st->items = 1;
    st->item_unit = "img";
    st->cost = bench_cost_siglip(m->cfg);
    ok = ensure_seq(s, error) &&
         (s->img || (s->img = vkrt_buffer_new(s->ctx, (uint64_t)siglip_n_tokens(m->siglip) * siglip_hidden(m->siglip) * 4,
                                              error))) &&
         run_loop(s, siglip_once, st, error);
    break;
  case BENCH_EULER_STEP:
    st->items = 1;
    st->item_unit = "step";
    ok = bench_cost_euler_step(m->cfg, kvf, m->st, s->pr->gen_prefix_got, 1, &st->cost, error) && euler_run(s, st, error);
    break;
  case BENCH_VAE_DECODE: {
    st->items = 1;
    st->item_unit = "img";
    StFile *vst = NULL;
    char *path = g_build_filename(m->vae_dir, "diffusion_pytorch_model.safetensors", NULL);
    ok = (vst = safetensors_open(path, error)) && bench_cost_vae_decode(vst, (uint32_t)h, (uint32_t)w, &st->cost, error);
    if (vst)
      safetensors_close(vst);
    g_free(path);
    ok = ok && latent_prepare(s, error) &&
         (s->rgb || (s->rgb = vkrt_buffer_new(s->ctx, 3ull * vae_out_h(m->vae) * vae_out_w(m->vae) * 4, error))) &&
         run_loop(s, vae_once, st, error);
    break;
  }
  case BENCH_PREVIEW:
    st->items = 1;
    st->item_unit = "img";
    /* no FLOPs: the preview's math runs inside a step's cfg_euler pass; the bytes are the
     * read-back's, one packed RGBA word per latent pixel */
    st->cost = (BenchCost){ 0, (double)h * w * 4 };
    if (!s->rgba_host)
      s->rgba_host = g_malloc((gsize)h * w * 4);
    ok = (s->rgba || ((s->rgba = vkrt_buffer_new(s->ctx, (uint64_t)h * w * 4, error)) &&
                      vkrt_buffer_fill(s->rgba, 0, (uint64_t)h * w * 4, 0xff000000u, error))) &&
         run_loop(s, preview_once, st, error);
    break;
  case BENCH_FIRST_PREVIEW:
    st->items = 1;
    st->item_unit = "img";
    ok = first_preview_run(s, st, error);
    break;
  default:
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "unknown stage");
  }
  if (ok)
    st->ran = TRUE;
  else
    g_prefix_error(error, "%s: ", bench_stage_name(id));
  return ok;
}
