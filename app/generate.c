#include "generate.h"
#include "budget.h"
#include "ops.h"
#include "ops_gen.h"
#include "uvit.h"
#include "vae.h"
#include "prompt.h"
#include "npy.h"
#include "rng.h"
#include <math.h>
#include <string.h>

struct JfGenControl {
  GMutex lock;
  float cfg;
  int steps;
};

JfGenControl *gen_control_new(float cfg, int steps)
{
  JfGenControl *c = g_new0(JfGenControl, 1);
  g_mutex_init(&c->lock);
  c->cfg = cfg;
  c->steps = steps;
  return c;
}

void gen_control_free(JfGenControl *c)
{
  if (!c)
    return;
  g_mutex_clear(&c->lock);
  g_free(c);
}

void gen_control_set_cfg(JfGenControl *c, float cfg) { g_mutex_lock(&c->lock); c->cfg = cfg; g_mutex_unlock(&c->lock); }
void gen_control_set_steps(JfGenControl *c, int s) { g_mutex_lock(&c->lock); c->steps = s; g_mutex_unlock(&c->lock); }
float gen_control_get_cfg(JfGenControl *c) { g_mutex_lock(&c->lock); float v = c->cfg; g_mutex_unlock(&c->lock); return v; }
int gen_control_get_steps(JfGenControl *c) { g_mutex_lock(&c->lock); int v = c->steps; g_mutex_unlock(&c->lock); return v; }

JfGenParams gen_params_defaults(void)
{
  JfGenParams p = { .prompt = NULL, .steps = 30, .cfg = 2.0f, .seed = 0, .batch = 1, .noise = NULL,
                    .preview = JF_PREVIEW_NONE, .preview_every = 5 };
  return p;
}

/* What a step's recording depends on besides the buffers JfGen owns for its whole life. Equal
 * keys within a run: the recorded parts are replayed as they are. */
typedef struct {
  int n;               /* images */
  uint32_t P;          /* prompt prefix length (positions, K/V rows, key mask) */
  uint32_t kv_cap;     /* K/V cache and key mask size (prepare_run may reallocate them) */
  gboolean preview;    /* whether the latent -> RGB preview is recorded */
} StepKey;

struct JfGen {
  JfModel *m;
  int max_batch;
  uint32_t C, h, w, per, T, H, img_h, img_w;  /* latent channels/size, tokens, hidden, image size */
  VkrtSeq *seq;        /* prompt pass and VAE decodes */
  VkrtBuffer *z, *z_prev, *v, *x0, *vout, *t_emb, *x, *out, *tok, *dec_rows, *pos, *mask, *ids, *rgba, *rgb;
  /* The Euler step: one sequence per submit part, recorded on the first step of a run and
   * replayed on the others. Everything that changes from step to step is in device memory:
   * step_params = { cfg, dt, t } for cfg_euler, and the time features uvit_set_time writes. */
  VkrtBuffer *step_params;
  GPtrArray *parts;    /* VkrtSeq *, grown as needed */
  guint n_parts;       /* parts the current recording uses */
  gboolean rec_valid;
  StepKey rec_key;
  gboolean replay;     /* FALSE: re-record every step (tests compare both) */
  /* per-run (sized by the prompt) */
  JfKvCache **kv;
  JfKvCache *kv_pre;
  uint32_t kv_cap;
  char *dump_dir;
  /* what gen_preview_with_cfg needs: the last finished step */
  gboolean have_last;
  float last_t;
  int last_n;
};

void gen_latent_size(const JfModel *m, int *channels, int *h, int *w)
{
  int grid = (int)lround(sqrt((double)m->cfg->proc.num_image_tokens));
  int side = grid * m->cfg->gen_enc.stride;
  *channels = m->cfg->gen_enc.in_channels;
  *h = m->gen_lat_h ? m->gen_lat_h : side;
  *w = m->gen_lat_w ? m->gen_lat_w : side;
}

/* Forgets the step recording (it references the per-run buffers, or the key changed). */
static void step_invalidate(JfGen *g)
{
  g->rec_valid = FALSE;
  g->n_parts = 0;
}

static void free_run(JfGen *g)
{
  step_invalidate(g);
  if (g->kv) {
    for (int i = 0; i < g->max_batch; i++)
      llm_kv_free(g->kv[i]);
    g_clear_pointer(&g->kv, g_free);
  }
  g_clear_pointer(&g->kv_pre, llm_kv_free);
  g_clear_pointer(&g->mask, vkrt_buffer_free);
  g_clear_pointer(&g->ids, vkrt_buffer_free);
  g->kv_cap = 0;
}

void gen_free(JfGen *g)
{
  if (!g)
    return;
  free_run(g);
  VkrtBuffer **bufs[] = { &g->z, &g->z_prev, &g->v, &g->x0, &g->vout, &g->t_emb, &g->x, &g->out, &g->tok, &g->dec_rows,
                          &g->pos, &g->rgba, &g->rgb, &g->step_params };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
  if (g->parts)
    g_ptr_array_free(g->parts, TRUE);
  if (g->seq) vkrt_seq_free(g->seq);
  g_free(g->dump_dir);
  g_free(g);
}

void gen_set_dump_dir(JfGen *g, const char *dir)
{
  g_free(g->dump_dir);
  g->dump_dir = g_strdup(dir);
}

JfGen *gen_new(JfModel *m, int max_batch, GError **error)
{
  if (!m->llm || !m->uvit || !m->vae) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED,
                "generation needs the language model, the generation encoder/decoder and the VAE loaded");
    return NULL;
  }
  if (!model_ensure_gen_batch(m, max_batch, error))
    return NULL;
  JfGen *g = g_new0(JfGen, 1);
  g->m = m;
  g->max_batch = max_batch;
  g->parts = g_ptr_array_new_with_free_func((GDestroyNotify)vkrt_seq_free);
  g->replay = TRUE;
  int c, h, w;
  gen_latent_size(m, &c, &h, &w);
  g->C = c; g->h = h; g->w = w;
  g->per = (uint32_t)(c * h * w);
  g->T = uvit_n_tokens(m->uvit);
  g->H = llm_config(m->llm)->hidden;
  g->img_h = vae_out_h(m->vae);
  g->img_w = vae_out_w(m->vae);
  /* the default latent is sized from num_image_tokens; a size set from a noise file is not */
  if (!m->gen_lat_h && g->T != (uint32_t)m->cfg->proc.num_image_tokens) {
    g_set_error(error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                "processor_config.json: num_image_tokens %d but the generation encoder makes %u tokens",
                m->cfg->proc.num_image_tokens, g->T);
    gen_free(g);
    return NULL;
  }
  if (2 * (g->T + 1) > llm_max_rows(m->llm)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NOT_SUPPORTED, "%u image tokens per CFG pair exceed one LLM pass", g->T);
    gen_free(g);
    return NULL;
  }
  VkrtContext *ctx = m->ctx;
  /* x holds either a CFG pair of [t_emb | tokens] rows or the prompt prefix */
  uint64_t n = max_batch, rows = MAX(2 * (uint64_t)(g->T + 1), llm_max_rows(m->llm));
  if (!(g->seq = vkrt_seq_new(ctx, error)) ||
      !(g->z = vkrt_buffer_new(ctx, n * g->per * 4, error)) ||
      !(g->z_prev = vkrt_buffer_new(ctx, n * g->per * 4, error)) ||
      !(g->v = vkrt_buffer_new(ctx, 2 * n * g->per * 4, error)) ||
      !(g->x0 = vkrt_buffer_new(ctx, n * g->per * 4, error)) ||
      !(g->vout = vkrt_buffer_new(ctx, n * g->per * 4, error)) ||
      !(g->t_emb = vkrt_buffer_new(ctx, n * g->H * 4, error)) ||
      !(g->x = vkrt_buffer_new(ctx, rows * g->H * 4, error)) ||
      !(g->out = vkrt_buffer_new(ctx, rows * g->H * 4, error)) ||
      !(g->tok = vkrt_buffer_new(ctx, n * g->T * g->H * 4, error)) ||
      !(g->dec_rows = vkrt_buffer_new(ctx, 2 * n * g->T * g->H * 4, error)) ||
      !(g->pos = vkrt_buffer_new(ctx, MAX(rows, 4096) * 4, error)) ||
      /* read (preview) or written (step parameters) by the host at every step */
      !(g->rgba = vkrt_buffer_new_host(ctx, n * g->h * g->w * 4, error)) ||
      !(g->rgb = vkrt_buffer_new(ctx, n * 3 * (uint64_t)g->img_h * g->img_w * 4, error)) ||
      !(g->step_params = vkrt_buffer_new_host(ctx, 4 * 4, error))) {
    gen_free(g);
    return NULL;
  }
  return g;
}

/* Per-prompt state: a one-sequence cache for the prompt prefix and a two-sequence (cond, uncond)
 * cache per image, plus the key mask. Reused while the prompt length allows. */
static gboolean prepare_run(JfGen *g, uint32_t P, int n, GError **error)
{
  uint32_t cap = P + 1 + g->T;
  if (g->kv && g->kv_cap >= cap && g->kv_cap <= cap + 64)
    return TRUE;
  free_run(g);
  cap += 16;  /* a little slack so similar prompts reuse the caches */
  g->kv_cap = cap;
  g->kv = g_new0(JfKvCache *, g->max_batch);
  for (int i = 0; i < n && i < g->max_batch; i++)
    if (!(g->kv[i] = llm_kv_new(g->m->llm, 2, cap, error)))
      return FALSE;
  if (!(g->kv_pre = llm_kv_new(g->m->llm, 1, cap, error)) ||
      !(g->mask = vkrt_buffer_new(g->m->ctx, 2 * (uint64_t)cap * 4, error)) ||
      !(g->ids = vkrt_buffer_new(g->m->ctx, (uint64_t)cap * 4, error)))
    return FALSE;
  return TRUE;
}

static gboolean ensure_kv(JfGen *g, int n, GError **error)
{
  for (int i = 0; i < n; i++)
    if (!g->kv[i]) {
      step_invalidate(g);
      if (!(g->kv[i] = llm_kv_new(g->m->llm, 2, g->kv_cap, error)))
        return FALSE;
    }
  return TRUE;
}

void gen_set_replay(JfGen *g, gboolean replay)
{
  g->replay = replay;
  step_invalidate(g);
}

static gboolean dump(JfGen *g, const char *name, NpyDtype dt, int ndim, const int64_t *shape, const void *data, GError **error)
{
  g_mkdir_with_parents(g->dump_dir, 0755);
  char *p = g_build_filename(g->dump_dir, name, NULL);
  gboolean ok = npy_write(p, dt, ndim, shape, data, error);
  g_free(p);
  return ok;
}

static gboolean dump_device(JfGen *g, const char *name, VkrtBuffer *b, uint64_t off, int ndim, const int64_t *shape, GError **error)
{
  uint64_t n = 1;
  for (int i = 0; i < ndim; i++)
    n *= shape[i];
  float *tmp = g_new(float, n);
  gboolean ok = vkrt_buffer_read(b, off, tmp, n * 4, error) && dump(g, name, NPY_F32, ndim, shape, tmp, error);
  g_free(tmp);
  return ok;
}

/* Nearest-neighbour upscale of a packed RGBA latent preview to the output image size. */
static JfImage *upscale_preview(const uint32_t *px, uint32_t h, uint32_t w, uint32_t H, uint32_t W)
{
  JfImage *img = image_new((int)W, (int)H);
  for (uint32_t y = 0; y < H; y++)
    for (uint32_t x = 0; x < W; x++)
      memcpy(img->rgba + ((size_t)y * W + x) * 4, &px[(y * h / H) * w + (x * w / W)], 4);
  return img;
}

/* RGB float [3, H, W] in [-1, 1] -> 8-bit, clipped and truncated toward zero as the official demo. */
static JfImage *rgb_to_image(const float *rgb, uint32_t H, uint32_t W)
{
  JfImage *img = image_new((int)W, (int)H);
  size_t plane = (size_t)H * W;
  for (size_t i = 0; i < plane; i++) {
    for (int c = 0; c < 3; c++) {
      float v = rgb[c * plane + i];
      if (!(v >= -1.0f)) v = -1.0f;  /* NaN too */
      if (v > 1.0f) v = 1.0f;
      img->rgba[i * 4 + c] = (uint8_t)((v + 1.0f) / 2.0f * 255.0f);
    }
    img->rgba[i * 4 + 3] = 255;
  }
  return img;
}

/* Sequence of submit part i of a step, made on first use. */
static VkrtSeq *step_part(JfGen *g, guint i, GError **error)
{
  while (g->parts->len <= i) {
    VkrtSeq *s = vkrt_seq_new(g->m->ctx, error);
    if (!s)
      return NULL;
    g_ptr_array_add(g->parts, s);
  }
  return g_ptr_array_index(g->parts, i);
}

/* Ends the part being recorded and starts the next one. */
static VkrtSeq *step_next_part(JfGen *g, VkrtSeq *cur, guint *i, GError **error)
{
  /* timings exist only between marks: without this, a part that ends before the "step" mark
   * would not count in gpu_ms */
  vkrt_seq_mark(cur, "part");
  VkrtSeq *s = step_part(g, ++*i, error);
  if (s)
    vkrt_seq_begin(s);
  return s;
}

/* Records every submit part of one Euler step over n images (nothing is submitted here). A part
 * ends between LLM layers once it holds budget_submit_flops() of work, and after each image, so
 * no submit runs long enough for a driver watchdog and a cancel waits at most one part. */
static gboolean step_record(JfGen *g, const StepKey *key, GError **error)
{
  JfModel *m = g->m;
  const int n = key->n;
  const uint32_t P = key->P, T = g->T, R = T + 1;
  const uint64_t rowb = (uint64_t)g->H * 4;
  guint pi = 0;
  /* parts are cut by recorded work, so that their size follows the model and the device */
  BudgetMeter meter;
  budget_meter_init(&meter, m->ctx, budget_submit_flops(m->ctx));
  step_invalidate(g);
  VkrtSeq *s = step_part(g, 0, error);
  if (!s)
    return FALSE;
  vkrt_seq_begin(s);
  /* encoder once for both CFG rows of every image */
  uvit_record_time_embed(m->uvit, s, (uint32_t)n, vkrt_tensor(g->t_emb));
  uvit_record_encode(m->uvit, s, (uint32_t)n, vkrt_tensor(g->z), vkrt_tensor(g->t_emb), vkrt_tensor(g->tok), 0);
  for (int i = 0; i < n; i++) {
    /* per image, one LLM pass over two sequences: [t_emb | tokens] for cond and for uncond
     * (same rows; only the key mask differs) */
    VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(g->x), 0, 2 * R * rowb);
    vkrt_seq_copy(s, vkrt_tensor_sub(x, 0, rowb), vkrt_tensor_sub(vkrt_tensor(g->t_emb), i * rowb, rowb), rowb);
    vkrt_seq_copy(s, vkrt_tensor_sub(x, rowb, T * rowb),
                  vkrt_tensor_sub(vkrt_tensor(g->tok), (uint64_t)i * T * rowb, T * rowb), T * rowb);
    vkrt_seq_copy(s, vkrt_tensor_sub(x, R * rowb, R * rowb), vkrt_tensor_sub(x, 0, R * rowb), R * rowb);
    int n_layers = llm_n_layers(m->llm);
    for (int l = 0; l < n_layers; l++) {
      if (l > 0 && budget_meter_full(&meter)) {
        if (!(s = step_next_part(g, s, &pi, error)))
          return FALSE;
        budget_meter_restart(&meter);
      }
      if (!llm_record_layers(m->llm, s, g->kv[i], x, vkrt_tensor_sub(vkrt_tensor(g->pos), 0, 2 * R * 4),
                             vkrt_tensor(g->mask), R, P, l, l + 1, error))
        return FALSE;
    }
    VkrtTensor o = vkrt_tensor_sub(vkrt_tensor(g->out), 0, 2 * R * rowb);
    llm_record_final_norm(m->llm, s, x, 2 * R, o);
    /* decoder rows: cond of image i at row i, uncond at row n + i; the t_emb row is not used */
    vkrt_seq_copy(s, vkrt_tensor_sub(vkrt_tensor(g->dec_rows), (uint64_t)i * T * rowb, T * rowb),
                  vkrt_tensor_sub(o, rowb, T * rowb), T * rowb);
    vkrt_seq_copy(s, vkrt_tensor_sub(vkrt_tensor(g->dec_rows), (uint64_t)(n + i) * T * rowb, T * rowb),
                  vkrt_tensor_sub(o, (R + 1) * rowb, T * rowb), T * rowb);
    if (i + 1 < n) {
      if (!(s = step_next_part(g, s, &pi, error)))
        return FALSE;
      budget_meter_restart(&meter);
    }
  }
  uvit_record_decode(m->uvit, s, 2 * (uint32_t)n, vkrt_tensor(g->dec_rows), 0, vkrt_tensor(g->t_emb),
                     (uint32_t)n, vkrt_tensor(g->v));
  VkrtCfgEulerOut co = {
    .x0 = vkrt_tensor(g->x0), .v_out = vkrt_tensor(g->vout), .z_prev = vkrt_tensor(g->z_prev),
    .rgba = key->preview ? vkrt_tensor(g->rgba) : vkrt_tensor_none(), .rgb_batch = 1, .hw = g->h * g->w,
    .factors = vkrt_sdxl_rgb_factors, .bias = vkrt_sdxl_rgb_bias,
  };
  vkrt_op_cfg_euler(s, vkrt_tensor(g->z), vkrt_tensor(g->v), vkrt_tensor_sub(vkrt_tensor(g->step_params), 0, 3 * 4),
                    (uint32_t)n, g->per, &co);
  vkrt_seq_mark(s, "step");
  vkrt_seq_mark(s, "part");
  g->n_parts = pi + 1;
  g->rec_key = *key;
  return TRUE;
}

static gboolean step_key_equal(const StepKey *a, const StepKey *b)
{
  return a->n == b->n && a->P == b->P && a->kv_cap == b->kv_cap && a->preview == b->preview;
}

/* One Euler step: the per-step values go to device memory, then every part is submitted (just
 * recorded) or replayed, with the cancel checked after each. */
static gboolean step_run(JfGen *g, const StepKey *key, float cfg, float dt, float t01, GCancellable *cancel,
                         double *gpu_ms, GError **error)
{
  gboolean fresh = FALSE;
  if (!g->replay || !g->rec_valid || !step_key_equal(key, &g->rec_key)) {
    if (!step_record(g, key, error))
      return FALSE;
    fresh = TRUE;
  }
  float prm[3] = { cfg, dt, t01 };
  float *tv = g_new(float, key->n);
  for (int i = 0; i < key->n; i++)
    tv[i] = t01 * 1000.0f;
  gboolean ok = uvit_set_time(g->m->uvit, tv, (uint32_t)key->n, error) &&
                vkrt_buffer_write(g->step_params, 0, prm, sizeof prm, error);
  g_free(tv);
  if (!ok)
    return FALSE;
  for (guint i = 0; i < g->n_parts; i++) {
    VkrtSeq *s = g_ptr_array_index(g->parts, i);
    /* a just-recorded part counted its FLOPs while recording; a replay counts them again */
    if (!(fresh ? vkrt_seq_submit(s, error) : vkrt_seq_replay(s, error))) {
      step_invalidate(g);
      return FALSE;
    }
    *gpu_ms += vkrt_seq_gpu_ms(s);
    if (g_cancellable_set_error_if_cancelled(cancel, error))
      return FALSE;
  }
  /* complete: later steps of this run replay it */
  g->rec_valid = TRUE;
  return TRUE;
}

/* Decodes latents (in the model's z space) of n images into g->rgb through the VAE, in
 * watchdog-sized submits with cancel checked between them. */
static gboolean vae_run(JfGen *g, VkrtBuffer *lat, int n, GCancellable *cancel, GError **error)
{
  /* vae_decode divides by the scaling factor itself */
  return vae_decode(g->m->vae, g->seq, (uint32_t)n, vkrt_tensor(lat), vkrt_tensor(g->rgb), cancel, NULL, error);
}

gboolean gen_run(JfGen *g, const JfGenParams *p, JfGenControl *control, JfGenStepFunc on_step,
                 void *user, GCancellable *cancel, JfImage ***images, GError **error)
{
  JfModel *m = g->m;
  const int n = p->batch;
  const uint32_t H = g->H, T = g->T, R = T + 1;  /* rows per CFG sequence: t_emb + image tokens */
  const uint64_t rowb = (uint64_t)H * 4;
  gboolean ok = FALSE;
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  char *text = NULL;
  JfImage *preview = NULL;
  uint32_t *px = NULL;
  g->have_last = FALSE;

  if (n < 1 || n > g->max_batch || p->steps < 1) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "batch must be 1..%d and steps >= 1", g->max_batch);
    goto out;
  }
  if (!p->prompt || !*p->prompt) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the prompt is empty");
    goto out;
  }
  text = prompt_generation(p->prompt, m->cfg->proc.image_start_tag);
  if (!tokenizer_encode(m->tok, text, -1, TRUE, ids, error))
    goto out;
  /* the trailing tag is dropped: t_emb takes its place */
  const uint32_t L = ids->len, P = L - 1;
  /* The prompt's K/V is made in one pass of at most llm_max_rows rows. max_position_embeddings
   * is not a bound here: RoPE takes any position, and the official pipeline (transformers'
   * Llama) does not enforce it either; JanusFlow-1.3B's 16384 is far above this anyway. */
  if (P > llm_max_rows(m->llm)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "the prompt is %u tokens; at most %u fit in one pass of the language model (shorten it)", P,
                llm_max_rows(m->llm));
    goto out;
  }
  if (g->dump_dir) {
    int64_t shape[1] = { L };
    if (!dump(g, "prompt_ids.npy", NPY_I32, 1, shape, ids->data, error))
      goto out;
  }
  if (!prepare_run(g, P, n, error) || !ensure_kv(g, n, error))
    goto out;

  /* initial latents: the file's, or our documented RNG's normals */
  {
    float *z0 = g_new(float, (gsize)n * g->per);
    if (p->noise) {
      memcpy(z0, p->noise, (size_t)n * g->per * 4);
    } else {
      JfRng rng;
      rng_init(&rng, p->seed);
      for (size_t i = 0; i < (size_t)n * g->per; i++)
        z0[i] = (float)rng_normal(&rng);
    }
    gboolean wok = vkrt_buffer_write(g->z, 0, z0, (uint64_t)n * g->per * 4, error);
    g_free(z0);
    if (!wok)
      goto out;
  }

  /* key mask: the cond row sees everything; the uncond row sees BOS, t_emb and the image tokens */
  {
    uint32_t cap = g->kv_cap;
    int32_t *mask = g_new0(int32_t, 2 * cap);
    for (uint32_t j = 0; j < cap; j++) {
      mask[j] = 1;
      mask[cap + j] = (j == 0 || j >= P);
    }
    int32_t *pos = g_new(int32_t, 2 * R);
    for (uint32_t i = 0; i < 2 * R; i++)
      pos[i] = (int32_t)(P + i % R);
    gboolean wok = vkrt_buffer_write(g->mask, 0, mask, 2 * (uint64_t)cap * 4, error) &&
                   vkrt_buffer_write(g->ids, 0, ids->data, (uint64_t)P * 4, error);
    g_free(mask);
    if (wok) {
      /* the prefix pass uses positions 0..P-1 from the same buffer, written first */
      int32_t *ppos = g_new(int32_t, P);
      for (uint32_t i = 0; i < P; i++)
        ppos[i] = (int32_t)i;
      wok = vkrt_buffer_write(g->pos, 0, ppos, (uint64_t)P * 4, error);
      g_free(ppos);
    }
    if (!wok) {
      g_free(pos);
      goto out;
    }
    /* prompt K/V once (exact: attention is causal, the prefix never sees later rows); the
     * uncond row only reads BOS of it, which is the same token at the same position */
    vkrt_seq_begin(g->seq);
    VkrtTensor xp = vkrt_tensor_sub(vkrt_tensor(g->x), 0, P * rowb);
    llm_record_embed(m->llm, g->seq, vkrt_tensor(g->ids), P, xp);
    if (!llm_record_layers(m->llm, g->seq, g->kv_pre, xp, vkrt_tensor_sub(vkrt_tensor(g->pos), 0, P * 4),
                           vkrt_tensor_none(), P, 0, 0, llm_n_layers(m->llm), error)) {
      g_free(pos);
      goto out;
    }
    for (int i = 0; i < n; i++)
      for (uint32_t s = 0; s < 2; s++)
        llm_copy_prefix(m->llm, g->seq, g->kv[i], s, g->kv_pre, 0, P);
    gboolean sok = vkrt_seq_submit(g->seq, error) &&
                   vkrt_buffer_write(g->pos, 0, pos, 2 * (uint64_t)R * 4, error);
    g_free(pos);
    if (!sok)
      goto out;
  }

  px = g_new(uint32_t, (gsize)g->h * g->w);
  /* Recordings are not kept from one run to the next: they also reference the UViT's and the
   * LLM's buffers, and the model may replace those between runs (model_ensure_gen_batch) with
   * new ones that can reuse the old addresses, so no cheap check could prove them still valid. */
  step_invalidate(g);
  const StepKey key = { .n = n, .P = P, .kv_cap = g->kv_cap, .preview = p->preview != JF_PREVIEW_NONE };
  double s0 = 0.0;     /* start of the current schedule segment (fraction of the way to t = 1) */
  int seg_first = 0;   /* step index where that segment began */
  int total = control ? gen_control_get_steps(control) : p->steps;
  for (int k = 0; k < total; k++) {
    int want = control ? MAX(gen_control_get_steps(control), k + 1) : total;
    if (want != total) {
      /* re-plan: the rest of [current time, 1] in want - k equal steps */
      s0 = s0 + (double)(k - seg_first) * (1.0 - s0) / (double)(total - seg_first);
      seg_first = k;
      total = want;
    }
    float cfg = control ? gen_control_get_cfg(control) : p->cfg;
    int seg_n = total - seg_first, j = k - seg_first;
    float t01 = seg_first == 0 ? (float)k / (float)total : (float)(s0 + (double)j * (1.0 - s0) / seg_n);
    float dt = seg_first == 0 ? 1.0f / (float)total : (float)((1.0 - s0) / seg_n);
    float t = t01 * 1000.0f;
    gint64 t_start = g_get_monotonic_time();
    double gpu_ms = 0;

    if (!step_run(g, &key, cfg, dt, t01, cancel, &gpu_ms, error))
      goto out;
    g->have_last = TRUE;
    g->last_t = t01;
    g->last_n = n;

    if (k == 0 && g->dump_dir) {
      int64_t shape[4] = { g->C, g->h, g->w, 0 };
      if (!dump_device(g, "velocity_0.npy", g->vout, 0, 3, shape, error))
        goto out;
    }
    if (on_step) {
      JfGenStep st = { .step = k, .steps = total, .t = t, .cfg = cfg, .gpu_ms = gpu_ms,
                       .wall_ms = (g_get_monotonic_time() - t_start) / 1000.0, .preview = NULL };
      if (p->preview == JF_PREVIEW_VAE && p->preview_every > 0 && (k + 1) % p->preview_every == 0) {
        if (!vae_run(g, g->x0, 1, cancel, error))
          goto out;
        float *rgb = g_new(float, 3 * (gsize)g->img_h * g->img_w);
        gboolean rok = vkrt_buffer_read(g->rgb, 0, rgb, 3 * (uint64_t)g->img_h * g->img_w * 4, error);
        if (rok)
          preview = rgb_to_image(rgb, g->img_h, g->img_w);
        g_free(rgb);
        if (!rok)
          goto out;
      } else if (p->preview != JF_PREVIEW_NONE) {
        if (!vkrt_buffer_read(g->rgba, 0, px, (uint64_t)g->h * g->w * 4, error))
          goto out;
        preview = upscale_preview(px, g->h, g->w, g->img_h, g->img_w);
      }
      st.preview = preview;
      on_step(&st, user);
      g_clear_pointer(&preview, image_free);
    }
    if (g_cancellable_set_error_if_cancelled(cancel, error))
      goto out;
  }

  if (g->dump_dir) {
    int64_t shape[4] = { g->C, g->h, g->w, 0 };
    if (!dump_device(g, "latent.npy", g->z, 0, 3, shape, error))
      goto out;
  }
  if (!vae_run(g, g->z, n, cancel, error))
    goto out;
  {
    uint64_t plane = 3 * (uint64_t)g->img_h * g->img_w;
    float *rgb = g_new(float, plane * n);
    if (!vkrt_buffer_read(g->rgb, 0, rgb, plane * n * 4, error)) {
      g_free(rgb);
      goto out;
    }
    if (g->dump_dir) {
      int64_t shape[3] = { 3, g->img_h, g->img_w };
      if (!dump(g, "image.npy", NPY_F32, 3, shape, rgb, error)) {
        g_free(rgb);
        goto out;
      }
    }
    *images = g_new0(JfImage *, n);
    for (int i = 0; i < n; i++)
      (*images)[i] = rgb_to_image(rgb + plane * i, g->img_h, g->img_w);
    g_free(rgb);
  }
  ok = TRUE;

out:
  g_clear_pointer(&preview, image_free);
  g_free(px);
  g_free(text);
  g_array_unref(ids);
  return ok;
}

JfImage *gen_preview_with_cfg(JfGen *g, int index, float cfg)
{
  if (!g->have_last || index < 0 || index >= g->last_n)
    return NULL;
  uint32_t per = g->per;
  float *z = g_new(float, per), *vc = g_new(float, per), *vu = g_new(float, per);
  JfImage *img = NULL;
  if (vkrt_buffer_read(g->z_prev, (uint64_t)index * per * 4, z, per * 4, NULL) &&
      vkrt_buffer_read(g->v, (uint64_t)index * per * 4, vc, per * 4, NULL) &&
      vkrt_buffer_read(g->v, ((uint64_t)g->last_n + index) * per * 4, vu, per * 4, NULL)) {
    uint32_t hw = g->h * g->w;
    uint32_t *px = g_new(uint32_t, hw);
    for (uint32_t i = 0; i < hw; i++) {
      float rgb[3];
      for (int c = 0; c < 3; c++)
        rgb[c] = vkrt_sdxl_rgb_bias[c];
      for (uint32_t ch = 0; ch < 4 && ch < g->C; ch++) {
        float v = cfg * vc[ch * hw + i] - (cfg - 1.0f) * vu[ch * hw + i];
        float x0 = z[ch * hw + i] + (1.0f - g->last_t) * v;
        for (int c = 0; c < 3; c++)
          rgb[c] += x0 * vkrt_sdxl_rgb_factors[ch][c];
      }
      uint8_t b[4] = { 0, 0, 0, 255 };
      for (int c = 0; c < 3; c++) {
        float u = (rgb[c] + 1.0f) / 2.0f;
        u = u < 0 ? 0 : u > 1 ? 1 : u;
        b[c] = (uint8_t)lrintf(u * 255.0f);
      }
      memcpy(&px[i], b, 4);
    }
    img = upscale_preview(px, g->h, g->w, g->img_h, g->img_w);
    g_free(px);
  }
  g_free(z);
  g_free(vc);
  g_free(vu);
  return img;
}
