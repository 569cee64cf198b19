/* g_debug notes (load warm-up, time to first preview): G_MESSAGES_DEBUG=janusflow */
#define G_LOG_DOMAIN "janusflow"
#include "jf-engine.h"
#include "jf-image-util.h"
#include "jf-chat-store.h"
#include "model.h"
#include "chat.h"
#include "pipelines.h"
#include "vkrt.h"

typedef enum { JOB_LOAD, JOB_CHAT, JOB_CHAT_RESET, JOB_CHAT_RESTORE, JOB_GEN, JOB_QUIT } JobKind;

/* A restored conversation keeps this share of the context free for the next turns: a history
 * that fills the context to the brim could be continued by no question at all. */
#define RESTORE_RESERVE_DIV 4

typedef struct {
  JobKind kind;
  guint id;
  GCancellable *cancel;
  char *model_dir, *vae_dir, *device;  /* JOB_LOAD */
  JfWeightFormat weights;              /* JOB_LOAD */
  char *text;                          /* JOB_CHAT question / JOB_GEN prompt */
  GPtrArray *images;                   /* JOB_CHAT: GdkTexture */
  GPtrArray *entries;                  /* JOB_CHAT_RESTORE: JfChatEntry copies */
  JfSampling sampling;
  JfGenParams gen;
  JfGenControl *control;               /* JOB_GEN: shared with the main thread (thread-safe) */
  gint64 requested;                    /* JOB_GEN: monotonic us when Generate was asked for */
} Job;

/* What the worker thread alone touches. */
typedef struct {
  VkrtContext *ctx;
  char *ctx_device;
  JfModel *model;
  JfChat *chat;
  JfGen *gen;
  int gen_batch;
} Worker;

typedef enum {
  MSG_PROGRESS, MSG_LOADED, MSG_CHAT_TEXT, MSG_CHAT_DONE, MSG_RESTORE_STEP, MSG_RESTORE_DONE, MSG_GEN_STEP,
  MSG_GEN_DONE, MSG_MEMORY, MSG_JOB_DONE,
} MsgKind;

typedef struct {
  JfEngine *engine;  /* a reference */
  MsgKind kind;
  guint job;
  double fraction;
  char *text;
  GError *error;
  guint64 memory;
  guint chat_tokens, chat_capacity;  /* MSG_MEMORY */
  guint done, total;                 /* MSG_RESTORE_STEP; MSG_RESTORE_DONE: total = pairs dropped */
  GArray *flags;                     /* MSG_RESTORE_DONE: gboolean per entry */
  gboolean can_generate, can_see;
  JfWeightFormat weights;            /* MSG_LOADED: as loaded (or as tried) */
  guint64 q8_saving;                 /* MSG_LOADED */
  gboolean q8_fits;                  /* MSG_LOADED */
  JfEngineStep step;
  gboolean first_preview;            /* MSG_GEN_STEP: the job's first preview; `requested` set */
  gint64 requested;
  GPtrArray *textures;
  gboolean wait;     /* lockstep: the worker waits for `handled` */
} Msg;

struct _JfEngine {
  GObject parent;
  GMainContext *main_ctx;
  GThread *thread;
  GAsyncQueue *queue;
  Worker w;

  GMutex lock;            /* guards everything below */
  GCond cond;
  GHashTable *jobs;       /* id -> Job*: queued or running */
  guint next_id;
  JfGenControl *gen_control;  /* of the newest queued or running generation */
  gboolean lockstep, stopping, handled;

  /* main thread only */
  gboolean shut, loaded, loading, can_generate, can_see;
  JfWeightFormat weights;
  guint64 q8_saving;
  gboolean q8_fits;
  char *device_name;
  guint64 memory;
  guint chat_tokens, chat_capacity;
  guint n_pending;
};

enum { SIG_LOAD_PROGRESS, SIG_LOAD_FINISHED, SIG_CHAT_TEXT, SIG_CHAT_FINISHED, SIG_RESTORE_PROGRESS,
       SIG_RESTORE_FINISHED, SIG_GEN_STEP, SIG_GEN_FINISHED, N_SIGNALS };
static guint signals[N_SIGNALS];
enum { PROP_0, PROP_LOADED, PROP_LOADING, PROP_MEMORY, PROP_BUSY, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE(JfEngine, jf_engine, G_TYPE_OBJECT)

static void job_free(Job *j)
{
  if (!j)
    return;
  g_clear_object(&j->cancel);
  g_free(j->model_dir);
  g_free(j->vae_dir);
  g_free(j->device);
  g_free(j->text);
  if (j->images)
    g_ptr_array_unref(j->images);
  if (j->entries)
    g_ptr_array_unref(j->entries);
  if (j->control)
    gen_control_free(j->control);
  g_free(j);
}

static void msg_free(gpointer data)
{
  Msg *m = data;
  g_free(m->text);
  g_clear_error(&m->error);
  g_clear_object(&m->step.preview);
  if (m->textures)
    g_ptr_array_unref(m->textures);
  if (m->flags)
    g_array_unref(m->flags);
  g_object_unref(m->engine);
  g_free(m);
}

static Msg *msg_new(JfEngine *e, MsgKind kind, guint job)
{
  Msg *m = g_new0(Msg, 1);
  m->engine = g_object_ref(e);
  m->kind = kind;
  m->job = job;
  return m;
}

/* --- main thread side ------------------------------------------------------------------------ */

static gboolean msg_dispatch(gpointer data)
{
  Msg *m = data;
  JfEngine *e = m->engine;
  if (!e->shut) {
    switch (m->kind) {
    case MSG_PROGRESS:
      g_signal_emit(e, signals[SIG_LOAD_PROGRESS], 0, m->fraction, m->text);
      break;
    case MSG_LOADED:
      e->loading = FALSE;
      e->loaded = m->error == NULL;
      e->can_generate = e->loaded && m->can_generate;
      e->can_see = e->loaded && m->can_see;
      e->weights = m->weights;
      e->q8_saving = m->q8_saving;
      e->q8_fits = m->q8_fits;
      g_free(e->device_name);
      e->device_name = g_strdup(m->text);
      g_object_notify_by_pspec(G_OBJECT(e), props[PROP_LOADING]);
      g_object_notify_by_pspec(G_OBJECT(e), props[PROP_LOADED]);
      g_signal_emit(e, signals[SIG_LOAD_FINISHED], 0, m->error);
      break;
    case MSG_CHAT_TEXT:
      g_signal_emit(e, signals[SIG_CHAT_TEXT], 0, m->job, m->text);
      break;
    case MSG_CHAT_DONE:
      g_signal_emit(e, signals[SIG_CHAT_FINISHED], 0, m->job, m->text, m->error);
      break;
    case MSG_RESTORE_STEP:
      g_signal_emit(e, signals[SIG_RESTORE_PROGRESS], 0, m->job, m->done, m->total);
      break;
    case MSG_RESTORE_DONE:
      g_signal_emit(e, signals[SIG_RESTORE_FINISHED], 0, m->job, m->flags, m->total, m->error);
      break;
    case MSG_GEN_STEP:
      g_signal_emit(e, signals[SIG_GEN_STEP], 0, &m->step);
      /* after the handlers, which put it on screen: issue 7 wants this under 100 ms on a GPU */
      if (m->first_preview)
        g_debug("first preview after %.1f ms (job %u)", (double)(g_get_monotonic_time() - m->requested) / 1000.0,
                m->job);
      break;
    case MSG_GEN_DONE:
      g_signal_emit(e, signals[SIG_GEN_FINISHED], 0, m->job, m->textures, m->error);
      break;
    case MSG_MEMORY:
      e->chat_tokens = m->chat_tokens;
      e->chat_capacity = m->chat_capacity;
      if (e->memory != m->memory) {
        e->memory = m->memory;
        g_object_notify_by_pspec(G_OBJECT(e), props[PROP_MEMORY]);
      }
      break;
    case MSG_JOB_DONE:
      if (e->n_pending > 0)
        e->n_pending--;
      g_object_notify_by_pspec(G_OBJECT(e), props[PROP_BUSY]);
      break;
    }
  }
  if (m->wait) {
    g_mutex_lock(&e->lock);
    e->handled = TRUE;
    g_cond_broadcast(&e->cond);
    g_mutex_unlock(&e->lock);
  }
  return G_SOURCE_REMOVE;
}

/* --- worker side ----------------------------------------------------------------------------- */

static void post(JfEngine *e, Msg *m)
{
  if (!m->wait) {
    g_main_context_invoke_full(e->main_ctx, G_PRIORITY_DEFAULT, msg_dispatch, m, msg_free);
    return;
  }
  /* lockstep: hand the message over and wait until the main thread has run it (or we stop) */
  g_mutex_lock(&e->lock);
  e->handled = FALSE;
  g_mutex_unlock(&e->lock);
  g_main_context_invoke_full(e->main_ctx, G_PRIORITY_DEFAULT, msg_dispatch, m, msg_free);
  g_mutex_lock(&e->lock);
  while (!e->handled && !e->stopping)
    g_cond_wait(&e->cond, &e->lock);
  g_mutex_unlock(&e->lock);
}

static void post_memory(JfEngine *e)
{
  Msg *m = msg_new(e, MSG_MEMORY, 0);
  m->memory = e->w.ctx ? vkrt_context_allocated(e->w.ctx) : 0;
  m->chat_tokens = e->w.chat ? chat_n_tokens(e->w.chat) : 0;
  m->chat_capacity = e->w.chat ? chat_capacity(e->w.chat) : 0;
  post(e, m);
}

typedef struct {
  JfEngine *e;
  Job *job;
  gboolean previewed;  /* generation: a preview was sent already */
} Cb;

static void on_load_progress(double fraction, const char *what, void *user)
{
  Cb *cb = user;
  Msg *m = msg_new(cb->e, MSG_PROGRESS, cb->job->id);
  m->fraction = fraction;
  m->text = g_strdup(what ? what : "");
  post(cb->e, m);
}

static void worker_unload(Worker *w)
{
  g_clear_pointer(&w->gen, gen_free);
  g_clear_pointer(&w->chat, chat_free);
  g_clear_pointer(&w->model, model_free);
  w->gen_batch = 0;
}

static void worker_free_all(Worker *w)
{
  worker_unload(w);
  g_clear_pointer(&w->ctx, vkrt_context_free);
  g_clear_pointer(&w->ctx_device, g_free);
}

/* From the checkpoint's tensor table, with the sums model_load's fit check uses: *saving = device
 * bytes the language model's weights take in bf16 less what they take in 8 bits, *fits = whether
 * the parts in `what` would fit the device with 8-bit weights. Both 0 if the table cannot be read. */
static void q8_facts(const StFile *st, const char *model_dir, unsigned what, VkrtContext *ctx, guint64 *saving,
                     gboolean *fits)
{
  StFile *own = NULL;
  *saving = 0;
  *fits = FALSE;
  if (!st) {
    g_autofree char *path = g_build_filename(model_dir, "model.safetensors", NULL);
    if (!(st = own = safetensors_open(path, NULL)))
      return;
  }
  *saving = model_weight_bytes(st, JF_LOAD_LLM, JF_WEIGHTS_BF16) - model_weight_bytes(st, JF_LOAD_LLM, JF_WEIGHTS_Q8_0);
  uint64_t heap = ctx ? vkrt_context_info(ctx)->device_local_bytes : 0;
  *fits = heap == 0 || model_weight_bytes(st, what, JF_WEIGHTS_Q8_0) <= heap;
  if (own)
    safetensors_close(own);
}

/* Still part of loading, so that the first Generate and the first chat turn build no pipeline
 * (issue 7): the generator for one image is made now (the first Generate would make it), and
 * pipelines_warm_up records what they use. Only a cancel fails the load; anything else is left
 * for the real job to meet and report. */
static gboolean warm_up(JfEngine *e, Job *job, GError **error)
{
  Worker *w = &e->w;
  /* JANUSFLOW_WARMUP=0: the old behaviour, to measure what the warm-up saves */
  if (g_strcmp0(g_getenv("JANUSFLOW_WARMUP"), "0") == 0)
    return TRUE;
  Cb cb = { e, job, FALSE };
  on_load_progress(1.0, "Preparing the GPU kernels", &cb);
  gint64 t0 = g_get_monotonic_time();
  GError *err = NULL;
  if (w->model->uvit && w->model->vae && !w->gen) {
    if ((w->gen = gen_new(w->model, 1, &err))) {
      w->gen_batch = 1;
    } else {
      g_debug("warm-up without generation: %s", err->message);
      g_clear_error(&err);
    }
  }
  uint64_t built = 0;
  pipelines_warm_up(w->model, w->gen, job->cancel, &built, &err);
  if (err && g_error_matches(err, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_propagate_error(error, err);
    return FALSE;
  }
  if (err) {
    g_debug("warm-up incomplete: %s", err->message);
    g_error_free(err);
  }
  g_debug("warm-up: %" G_GUINT64_FORMAT " pipelines built in %.0f ms (pipeline cache %s, %" G_GUINT64_FORMAT " bytes read)",
          built, (double)(g_get_monotonic_time() - t0) / 1000.0,
          vkrt_context_pipeline_cache_file(w->ctx) ? vkrt_context_pipeline_cache_file(w->ctx) : "off",
          vkrt_context_pipeline_cache_loaded(w->ctx));
  return TRUE;
}

static void run_load(JfEngine *e, Job *job)
{
  Worker *w = &e->w;
  GError *error = NULL;
  worker_unload(w);
  if (w->ctx && g_strcmp0(w->ctx_device, job->device) != 0) {
    g_clear_pointer(&w->ctx, vkrt_context_free);
    g_clear_pointer(&w->ctx_device, g_free);
  }
  Cb cb = { e, job, FALSE };
  if (!w->ctx) {
    on_load_progress(0.0, "Opening the GPU", &cb);
    char *cache = pipelines_cache_dir();
    VkrtOptions opt = { .device = job->device && *job->device ? job->device : NULL, .validate = false,
                        .pipeline_cache_dir = cache };
    w->ctx = vkrt_context_new(&opt, &error);
    w->ctx_device = g_strdup(job->device);
    g_free(cache);
  }
  unsigned what = job->vae_dir && *job->vae_dir ? JF_LOAD_ALL : JF_LOAD_LLM | JF_LOAD_VISION;
  if (w->ctx && !g_cancellable_set_error_if_cancelled(job->cancel, &error)) {
    JfLoadOptions opt = { .weights = job->weights };
    w->model = model_load_opts(w->ctx, job->model_dir, job->vae_dir && *job->vae_dir ? job->vae_dir : NULL,
                               what, &opt, on_load_progress, &cb, &error);
  }
  if (w->model && !warm_up(e, job, &error))
    worker_unload(w);
  Msg *m = msg_new(e, MSG_LOADED, job->id);
  m->weights = w->model && w->model->llm ? llm_weight_format(w->model->llm) : job->weights;
  q8_facts(w->model ? w->model->st : NULL, job->model_dir, what, w->ctx, &m->q8_saving, &m->q8_fits);
  if (w->model) {
    m->can_generate = w->model->uvit != NULL && w->model->vae != NULL;
    m->can_see = w->model->siglip != NULL;
    m->text = g_strdup(vkrt_context_info(w->ctx)->name);
  } else {
    m->error = error;
  }
  post_memory(e);
  post(e, m);
}

/* Returning FALSE ends the answer where it is: chat_send then keeps the partial answer in the
 * conversation (Stop during the answer), while a cancel during the prefill is an error. */
static gboolean on_chat_text(const char *piece, void *user)
{
  Cb *cb = user;
  if (piece && *piece) {
    Msg *m = msg_new(cb->e, MSG_CHAT_TEXT, cb->job->id);
    m->text = g_strdup(piece);
    g_mutex_lock(&cb->e->lock);
    m->wait = cb->e->lockstep;
    g_mutex_unlock(&cb->e->lock);
    post(cb->e, m);
  }
  return !g_cancellable_is_cancelled(cb->job->cancel);
}

static gboolean no_model(Worker *w, GError **error)
{
  if (w->model)
    return FALSE;
  g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NOT_INITIALIZED, "No model is loaded");
  return TRUE;
}

static void run_chat(JfEngine *e, Job *job)
{
  Worker *w = &e->w;
  GError *error = NULL;
  char *answer = NULL;
  JfImage **imgs = NULL;
  guint n = job->images ? job->images->len : 0;
  if (no_model(w, &error) || g_cancellable_set_error_if_cancelled(job->cancel, &error))
    goto done;
  if (!w->chat && !(w->chat = chat_new(w->model, NULL, 0, &error)))
    goto done;
  imgs = g_new0(JfImage *, n + 1);
  for (guint i = 0; i < n; i++) {
    if (!(imgs[i] = jf_texture_to_image(g_ptr_array_index(job->images, i)))) {
      g_set_error_literal(&error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "Out of memory for an image");
      goto done;
    }
  }
  Cb cb = { e, job, FALSE };
  chat_send(w->chat, job->text, (const JfImage *const *)imgs, (int)n, &job->sampling, on_chat_text, &cb,
            job->cancel, &answer, &error);
done:
  for (guint i = 0; imgs && i < n; i++)
    image_free(imgs[i]);
  g_free(imgs);
  post_memory(e);
  Msg *m = msg_new(e, MSG_CHAT_DONE, job->id);
  m->text = answer;
  m->error = error;
  post(e, m);
}

/* The past exchanges of a saved conversation: user entry -> its answer. */
typedef struct {
  guint user;                /* index of the user entry; the answer follows it */
  uint32_t first, later;     /* tokens as the first turn / as a later one (chat_measure_turn) */
} Pair;

static int n_usable_images(Worker *w, const JfChatEntry *q)
{
  int n = 0;
  for (guint i = 0; w->model->siglip && i < q->textures->len; i++)
    n += g_ptr_array_index(q->textures, i) != NULL;
  return n;
}

/* The pane shows answers without the space the model starts them with (the template, too, puts
 * one after "Assistant:"); put it back so the ids are the ones the model produced. */
static char *answer_text(const JfChatEntry *a)
{
  if (!*a->text || g_ascii_isspace(a->text[0]))
    return g_strdup(a->text);
  return g_strconcat(" ", a->text, NULL);
}

/* The pairs worth replaying, measured. A turn chat_send would have refused (bad input) or that
 * failed before any answer is left out: it never was in the model's memory. */
static gboolean collect_pairs(Worker *w, GPtrArray *entries, GArray *pairs, GError **error)
{
  for (guint i = 0; i + 1 < entries->len; i++) {
    const JfChatEntry *q = g_ptr_array_index(entries, i), *a = g_ptr_array_index(entries, i + 1);
    if (g_strcmp0(q->role, "user") != 0 || g_strcmp0(a->role, "assistant") != 0)
      continue;
    i++;
    if (a->stopped && !*a->text)
      continue;
    Pair p = { .user = i - 1 };
    g_autofree char *answer = answer_text(a);
    int n = n_usable_images(w, q);
    GError *e = NULL;
    if (!chat_measure_turn(w->chat, q->text, n, answer, TRUE, &p.first, &e) ||
        !chat_measure_turn(w->chat, q->text, n, answer, FALSE, &p.later, &e)) {
      if (g_error_matches(e, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT)) {
        g_error_free(e);
        continue;
      }
      g_propagate_error(error, e);
      return FALSE;
    }
    g_array_append_val(pairs, p);
  }
  return TRUE;
}

static gboolean replay_pair(Worker *w, const JfChatEntry *q, const JfChatEntry *a, GCancellable *cancel,
                            GError **error)
{
  int n = n_usable_images(w, q);
  JfImage **imgs = g_new0(JfImage *, n + 1);
  gboolean ok = TRUE;
  for (guint i = 0, k = 0; n > 0 && i < q->textures->len && ok; i++) {
    GdkTexture *t = g_ptr_array_index(q->textures, i);
    if (!t)
      continue;
    if (!(imgs[k++] = jf_texture_to_image(t))) {
      g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "Out of memory for an image");
      ok = FALSE;
    }
  }
  g_autofree char *answer = answer_text(a);
  ok = ok && chat_replay_turn(w->chat, q->text, (const JfImage *const *)imgs, n, answer, cancel, error);
  for (int i = 0; i < n; i++)
    image_free(imgs[i]);
  g_free(imgs);
  return ok;
}

static void run_chat_restore(JfEngine *e, Job *job)
{
  Worker *w = &e->w;
  GError *error = NULL;
  GPtrArray *entries = job->entries;
  GArray *flags = g_array_new(FALSE, TRUE, sizeof(gboolean));
  g_array_set_size(flags, entries->len);
  GArray *pairs = g_array_new(FALSE, FALSE, sizeof(Pair));
  guint dropped = 0;
  if (no_model(w, &error) || g_cancellable_set_error_if_cancelled(job->cancel, &error))
    goto done;
  if (!w->chat && !(w->chat = chat_new(w->model, NULL, 0, &error)))
    goto done;
  chat_reset(w->chat);
  if (!collect_pairs(w, entries, pairs, &error))
    goto done;
  /* newest first: keep pairs while they fit (the oldest kept one is the first turn) */
  uint64_t budget = chat_capacity(w->chat) - chat_capacity(w->chat) / RESTORE_RESERVE_DIV, later_sum = 0;
  guint start = pairs->len;
  while (start > 0) {
    const Pair *p = &g_array_index(pairs, Pair, start - 1);
    if (p->first + later_sum > budget)
      break;
    later_sum += p->later;
    start--;
  }
  dropped = start;
  for (guint k = start; k < pairs->len; k++) {
    const Pair *p = &g_array_index(pairs, Pair, k);
    if (!replay_pair(w, g_ptr_array_index(entries, p->user), g_ptr_array_index(entries, p->user + 1),
                     job->cancel, &error))
      break;
    g_array_index(flags, gboolean, p->user) = g_array_index(flags, gboolean, p->user + 1) = TRUE;
    Msg *m = msg_new(e, MSG_RESTORE_STEP, job->id);
    m->done = k - start + 1;
    m->total = pairs->len - start;
    post(e, m);
  }
done:
  if (error && w->chat)
    chat_reset(w->chat);  /* half a history would be worse than none: the pane says it is gone */
  g_array_unref(pairs);
  post_memory(e);
  Msg *m = msg_new(e, MSG_RESTORE_DONE, job->id);
  m->error = error;
  m->total = dropped;
  if (error)
    g_array_unref(flags);
  else
    m->flags = flags;
  post(e, m);
}

static void on_gen_step(const JfGenStep *info, void *user)
{
  Cb *cb = user;
  JfEngine *e = cb->e;
  Msg *m = msg_new(e, MSG_GEN_STEP, cb->job->id);
  m->step.job = cb->job->id;
  m->step.step = info->step;
  m->step.steps = info->steps;
  m->step.t = info->t;
  m->step.cfg = info->cfg;
  m->step.gpu_ms = info->gpu_ms;
  m->step.wall_ms = info->wall_ms;
  if (info->preview) {
    m->step.preview = jf_texture_from_image(info->preview);
    m->first_preview = !cb->previewed;
    m->requested = cb->job->requested;
    cb->previewed = TRUE;
  }
  g_mutex_lock(&e->lock);
  m->wait = e->lockstep;
  g_mutex_unlock(&e->lock);
  post(e, m);
}

static void run_gen(JfEngine *e, Job *job)
{
  Worker *w = &e->w;
  GError *error = NULL;
  JfImage **images = NULL;
  GPtrArray *textures = NULL;
  int batch = MAX(job->gen.batch, 1);
  if (no_model(w, &error) || g_cancellable_set_error_if_cancelled(job->cancel, &error))
    goto done;
  if (w->gen && w->gen_batch < batch) {
    g_clear_pointer(&w->gen, gen_free);
    w->gen_batch = 0;
  }
  if (!w->gen) {
    if (!(w->gen = gen_new(w->model, batch, &error)))
      goto done;
    w->gen_batch = batch;
  }
  JfGenParams p = job->gen;
  p.prompt = job->text;
  Cb cb = { e, job, FALSE };
  if (gen_run(w->gen, &p, job->control, on_gen_step, &cb, job->cancel, &images, &error)) {
    textures = g_ptr_array_new_with_free_func(g_object_unref);
    for (int i = 0; i < batch && images; i++) {
      g_ptr_array_add(textures, jf_texture_from_image(images[i]));
      image_free(images[i]);
    }
    g_free(images);
  }
done:
  post_memory(e);
  Msg *m = msg_new(e, MSG_GEN_DONE, job->id);
  m->textures = textures;
  m->error = error;
  post(e, m);
}

static gpointer worker_main(gpointer data)
{
  JfEngine *e = data;
  for (;;) {
    Job *job = g_async_queue_pop(e->queue);
    if (job->kind == JOB_QUIT) {
      job_free(job);
      break;
    }
    g_mutex_lock(&e->lock);
    gboolean dropped = !g_hash_table_contains(e->jobs, GUINT_TO_POINTER(job->id));
    g_mutex_unlock(&e->lock);
    if (!dropped) {
      switch (job->kind) {
      case JOB_LOAD: run_load(e, job); break;
      case JOB_CHAT: run_chat(e, job); break;
      case JOB_CHAT_RESET:
        if (e->w.chat)
          chat_reset(e->w.chat);
        post_memory(e);
        break;
      case JOB_CHAT_RESTORE: run_chat_restore(e, job); break;
      case JOB_GEN: run_gen(e, job); break;
      case JOB_QUIT: break;
      }
    }
    g_mutex_lock(&e->lock);
    g_hash_table_remove(e->jobs, GUINT_TO_POINTER(job->id));
    if (job->control && e->gen_control == job->control)
      e->gen_control = NULL;
    g_mutex_unlock(&e->lock);
    post(e, msg_new(e, MSG_JOB_DONE, job->id));
    job_free(job);
  }
  worker_free_all(&e->w);
  return NULL;
}

/* --- public API ------------------------------------------------------------------------------ */

static guint submit(JfEngine *e, Job *job)
{
  g_return_val_if_fail(!e->shut, 0);
  job->cancel = g_cancellable_new();
  g_mutex_lock(&e->lock);
  job->id = ++e->next_id;
  g_hash_table_insert(e->jobs, GUINT_TO_POINTER(job->id), job->cancel);
  if (job->control)
    e->gen_control = job->control;
  g_mutex_unlock(&e->lock);
  guint id = job->id;
  e->n_pending++;
  g_async_queue_push(e->queue, job);
  g_object_notify_by_pspec(G_OBJECT(e), props[PROP_BUSY]);
  return id;
}

guint jf_engine_load(JfEngine *e, const char *model_dir, const char *vae_dir, const char *device,
                     JfWeightFormat weights)
{
  g_return_val_if_fail(JF_IS_ENGINE(e) && model_dir, 0);
  Job *job = g_new0(Job, 1);
  job->kind = JOB_LOAD;
  job->model_dir = g_strdup(model_dir);
  job->vae_dir = g_strdup(vae_dir);
  job->device = g_strdup(device);
  job->weights = weights;
  e->loading = TRUE;
  e->loaded = FALSE;
  e->can_generate = e->can_see = FALSE;
  g_object_notify_by_pspec(G_OBJECT(e), props[PROP_LOADING]);
  g_object_notify_by_pspec(G_OBJECT(e), props[PROP_LOADED]);
  return submit(e, job);
}

guint jf_engine_chat_send(JfEngine *e, const char *text, GPtrArray *images, const JfSampling *s)
{
  g_return_val_if_fail(JF_IS_ENGINE(e) && text && s, 0);
  Job *job = g_new0(Job, 1);
  job->kind = JOB_CHAT;
  job->text = g_strdup(text);
  job->images = g_ptr_array_new_with_free_func(g_object_unref);
  for (guint i = 0; images && i < images->len; i++)
    g_ptr_array_add(job->images, g_object_ref(g_ptr_array_index(images, i)));
  job->sampling = *s;
  return submit(e, job);
}

guint jf_engine_chat_reset(JfEngine *e)
{
  g_return_val_if_fail(JF_IS_ENGINE(e), 0);
  Job *job = g_new0(Job, 1);
  job->kind = JOB_CHAT_RESET;
  return submit(e, job);
}

guint jf_engine_chat_restore(JfEngine *e, GPtrArray *entries)
{
  g_return_val_if_fail(JF_IS_ENGINE(e) && entries, 0);
  Job *job = g_new0(Job, 1);
  job->kind = JOB_CHAT_RESTORE;
  job->entries = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  for (guint i = 0; i < entries->len; i++)
    g_ptr_array_add(job->entries, jf_chat_entry_copy(g_ptr_array_index(entries, i)));
  return submit(e, job);
}

guint jf_engine_generate(JfEngine *e, const JfGenParams *p)
{
  g_return_val_if_fail(JF_IS_ENGINE(e) && p && p->prompt, 0);
  Job *job = g_new0(Job, 1);
  job->kind = JOB_GEN;
  job->gen = *p;
  job->gen.noise = NULL;
  job->text = g_strdup(p->prompt);
  job->gen.prompt = NULL;
  job->control = gen_control_new(p->cfg, p->steps);
  job->requested = g_get_monotonic_time();
  return submit(e, job);
}

void jf_engine_set_cfg(JfEngine *e, float cfg)
{
  g_return_if_fail(JF_IS_ENGINE(e));
  g_mutex_lock(&e->lock);
  if (e->gen_control)
    gen_control_set_cfg(e->gen_control, cfg);
  g_mutex_unlock(&e->lock);
}

void jf_engine_set_steps(JfEngine *e, int steps)
{
  g_return_if_fail(JF_IS_ENGINE(e));
  g_mutex_lock(&e->lock);
  if (e->gen_control)
    gen_control_set_steps(e->gen_control, steps);
  g_mutex_unlock(&e->lock);
}

void jf_engine_cancel(JfEngine *e, guint job)
{
  g_return_if_fail(JF_IS_ENGINE(e));
  g_mutex_lock(&e->lock);
  GCancellable *c = g_hash_table_lookup(e->jobs, GUINT_TO_POINTER(job));
  if (c)
    g_cancellable_cancel(c);
  g_mutex_unlock(&e->lock);
}

guint jf_engine_n_pending(JfEngine *e)
{
  return e->n_pending;
}

void jf_engine_set_lockstep(JfEngine *e, gboolean lockstep)
{
  g_mutex_lock(&e->lock);
  e->lockstep = lockstep;
  g_mutex_unlock(&e->lock);
}

gboolean jf_engine_is_shut_down(JfEngine *e) { return e->shut; }
gboolean jf_engine_is_loaded(JfEngine *e) { return e->loaded; }
gboolean jf_engine_is_loading(JfEngine *e) { return e->loading; }
gboolean jf_engine_can_generate(JfEngine *e) { return e->can_generate; }
gboolean jf_engine_can_see(JfEngine *e) { return e->can_see; }
const char *jf_engine_get_device_name(JfEngine *e) { return e->device_name; }
guint64 jf_engine_get_memory(JfEngine *e) { return e->memory; }
JfWeightFormat jf_engine_get_weights(JfEngine *e) { return e->weights; }
guint64 jf_engine_get_q8_saving(JfEngine *e) { return e->q8_saving; }
gboolean jf_engine_get_q8_fits(JfEngine *e) { return e->q8_fits; }
guint jf_engine_get_chat_tokens(JfEngine *e) { return e->chat_tokens; }
guint jf_engine_get_chat_capacity(JfEngine *e) { return e->chat_capacity; }

static void cancel_one(gpointer key, gpointer value, gpointer user)
{
  (void)key;
  (void)user;
  g_cancellable_cancel(value);
}

void jf_engine_shutdown(JfEngine *e)
{
  g_return_if_fail(JF_IS_ENGINE(e));
  if (e->shut)
    return;
  e->shut = TRUE;
  g_mutex_lock(&e->lock);
  e->stopping = TRUE;
  g_hash_table_foreach(e->jobs, cancel_one, NULL);
  /* queued jobs are skipped: the worker only runs jobs still in the table */
  g_hash_table_remove_all(e->jobs);
  e->gen_control = NULL;
  g_cond_broadcast(&e->cond);
  g_mutex_unlock(&e->lock);
  Job *quit = g_new0(Job, 1);
  quit->kind = JOB_QUIT;
  g_async_queue_push(e->queue, quit);
  g_thread_join(e->thread);
  e->thread = NULL;
  /* drain jobs the worker never got to */
  Job *left;
  while ((left = g_async_queue_try_pop(e->queue)))
    job_free(left);
}

static void jf_engine_dispose(GObject *obj)
{
  JfEngine *e = JF_ENGINE(obj);
  jf_engine_shutdown(e);
  G_OBJECT_CLASS(jf_engine_parent_class)->dispose(obj);
}

static void jf_engine_finalize(GObject *obj)
{
  JfEngine *e = JF_ENGINE(obj);
  g_async_queue_unref(e->queue);
  g_hash_table_unref(e->jobs);
  g_mutex_clear(&e->lock);
  g_cond_clear(&e->cond);
  g_free(e->device_name);
  g_main_context_unref(e->main_ctx);
  G_OBJECT_CLASS(jf_engine_parent_class)->finalize(obj);
}

static void jf_engine_get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec)
{
  JfEngine *e = JF_ENGINE(obj);
  switch (id) {
  case PROP_LOADED: g_value_set_boolean(value, e->loaded); break;
  case PROP_LOADING: g_value_set_boolean(value, e->loading); break;
  case PROP_MEMORY: g_value_set_uint64(value, e->memory); break;
  case PROP_BUSY: g_value_set_boolean(value, e->n_pending > 0); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void jf_engine_class_init(JfEngineClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  oc->dispose = jf_engine_dispose;
  oc->finalize = jf_engine_finalize;
  oc->get_property = jf_engine_get_property;
  props[PROP_LOADED] = g_param_spec_boolean("loaded", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_LOADING] = g_param_spec_boolean("loading", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_MEMORY] = g_param_spec_uint64("memory", NULL, NULL, 0, G_MAXUINT64, 0, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_BUSY] = g_param_spec_boolean("busy", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(oc, N_PROPS, props);

  signals[SIG_LOAD_PROGRESS] = g_signal_new("load-progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_DOUBLE, G_TYPE_STRING);
  signals[SIG_LOAD_FINISHED] = g_signal_new("load-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIG_CHAT_TEXT] = g_signal_new("chat-text", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 2, G_TYPE_UINT, G_TYPE_STRING);
  signals[SIG_CHAT_FINISHED] = g_signal_new("chat-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_STRING, G_TYPE_POINTER);
  signals[SIG_RESTORE_PROGRESS] = g_signal_new("chat-restore-progress", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_UINT, G_TYPE_UINT);
  signals[SIG_RESTORE_FINISHED] = g_signal_new("chat-restore-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 4, G_TYPE_UINT, G_TYPE_POINTER, G_TYPE_UINT, G_TYPE_POINTER);
  signals[SIG_GEN_STEP] = g_signal_new("gen-step", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  signals[SIG_GEN_FINISHED] = g_signal_new("gen-finished", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST,
    0, NULL, NULL, NULL, G_TYPE_NONE, 3, G_TYPE_UINT, G_TYPE_POINTER, G_TYPE_POINTER);
}

static void jf_engine_init(JfEngine *e)
{
  g_mutex_init(&e->lock);
  g_cond_init(&e->cond);
  e->main_ctx = g_main_context_ref_thread_default();
  e->queue = g_async_queue_new();
  e->jobs = g_hash_table_new(g_direct_hash, g_direct_equal);
  e->thread = g_thread_new("jf-engine", worker_main, e);
}

JfEngine *jf_engine_new(void)
{
  return g_object_new(JF_TYPE_ENGINE, NULL);
}
