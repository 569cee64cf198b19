#include "chat.h"
#include "budget.h"
#include "ops.h"
#include "prompt.h"
#include "npy.h"
#include "siglip.h"
#include <string.h>
#include <math.h>

#define TOPK_MAX 256

struct JfChat {
  JfModel *m;
  char *system;
  VkrtSeq *seq;
  VkrtSeq *seq_next;            /* decode: the next token is recorded here while `seq` runs */
  JfKvCache *kv;
  uint32_t capacity, rows;      /* rows: per forward chunk */
  uint32_t n_cached;            /* tokens whose K/V are in the cache */
  GArray *pending;              /* ids of the conversation not yet fed (last answer token, EOS) */
  char *dump_dir;
  VkrtBuffer *ids, *pos, *x, *out, *logits, *pick, *topv, *topi, *img;
  uint32_t img_tokens;          /* rows of one image's embeddings */
};

void chat_free(JfChat *c)
{
  if (!c)
    return;
  VkrtBuffer **bufs[] = { &c->ids, &c->pos, &c->x, &c->out, &c->logits, &c->pick, &c->topv, &c->topi, &c->img };
  for (size_t i = 0; i < G_N_ELEMENTS(bufs); i++)
    g_clear_pointer(bufs[i], vkrt_buffer_free);
  llm_kv_free(c->kv);
  if (c->seq) vkrt_seq_free(c->seq);
  if (c->seq_next) vkrt_seq_free(c->seq_next);
  if (c->pending) g_array_unref(c->pending);
  g_free(c->system);
  g_free(c->dump_dir);
  g_free(c);
}

JfChat *chat_new(JfModel *m, const char *system, uint32_t context, GError **error)
{
  if (!m->llm) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "chat: the language model is not loaded");
    return NULL;
  }
  if (!prompt_check_format(m->cfg->proc.sft_format, error))
    return NULL;
  const JfLlmConfig *lc = llm_config(m->llm);
  JfChat *c = g_new0(JfChat, 1);
  c->m = m;
  c->system = g_strdup(system ? system : PROMPT_DEFAULT_SYSTEM);
  /* max_position_embeddings is not a bound: RoPE takes any position and the official pipeline
   * (transformers' Llama) does not enforce it; the CLI notes a --ctx above it */
  c->capacity = context ? context : CHAT_DEFAULT_CONTEXT;
  c->rows = llm_max_rows(m->llm);
  c->pending = g_array_new(FALSE, FALSE, sizeof(int32_t));
  VkrtContext *ctx = m->ctx;
  uint64_t H = lc->hidden;
  if (!(c->seq = vkrt_seq_new(ctx, error)) || !(c->seq_next = vkrt_seq_new(ctx, error))) {
    chat_free(c);
    return NULL;
  }
  if (!(c->kv = llm_kv_new(m->llm, 1, c->capacity, error))) {
    g_prefix_error(error, "a context of %u tokens does not fit (a smaller one will): ", c->capacity);
    chat_free(c);
    return NULL;
  }
  /* what the host writes or reads at every token: ids, positions, the sampled candidates */
  if (!(c->ids = vkrt_buffer_new_host(ctx, c->rows * 4, error)) ||
      !(c->pos = vkrt_buffer_new_host(ctx, c->rows * 4, error)) ||
      !(c->x = vkrt_buffer_new(ctx, c->rows * H * 4, error)) ||
      !(c->out = vkrt_buffer_new(ctx, c->rows * H * 4, error)) ||
      !(c->logits = vkrt_buffer_new(ctx, (uint64_t)lc->vocab * 4, error)) ||
      !(c->pick = vkrt_buffer_new_host(ctx, 16, error)) ||
      !(c->topv = vkrt_buffer_new_host(ctx, TOPK_MAX * 4, error)) ||
      !(c->topi = vkrt_buffer_new_host(ctx, TOPK_MAX * 4, error))) {
    chat_free(c);
    return NULL;
  }
  if (m->siglip) {
    c->img_tokens = siglip_n_tokens(m->siglip);
    if (!(c->img = vkrt_buffer_new(ctx, (uint64_t)c->img_tokens * H * 4, error))) {
      chat_free(c);
      return NULL;
    }
  }
  return c;
}

void chat_reset(JfChat *c)
{
  c->n_cached = 0;
  g_array_set_size(c->pending, 0);
}

uint32_t chat_n_tokens(const JfChat *c) { return c->n_cached + c->pending->len; }
uint32_t chat_capacity(const JfChat *c) { return c->capacity; }

void chat_set_dump_dir(JfChat *c, const char *dir)
{
  g_free(c->dump_dir);
  c->dump_dir = g_strdup(dir);
}

static gboolean dump_array(JfChat *c, const char *name, NpyDtype dt, int ndim, const int64_t *shape,
                           const void *data, GError **error)
{
  char *p = g_build_filename(c->dump_dir, name, NULL);
  gboolean ok = npy_write(p, dt, ndim, shape, data, error);
  g_free(p);
  return ok;
}

/* Streams UTF-8 safely: holds back a trailing sequence that may still be completed by the next
 * token, and replaces invalid bytes. The final answer text is decoded separately, exactly. */
typedef struct {
  GByteArray *held;
  JfTextFunc fn;
  void *user;
} TextStream;

static gboolean stream_push(TextStream *ts, const char *bytes, gsize len, gboolean flush)
{
  g_byte_array_append(ts->held, (const guint8 *)bytes, len);
  gsize n = ts->held->len, cut = n;
  if (!flush) {
    /* find the start of a possibly incomplete final sequence */
    for (gsize back = 1; back <= 3 && back <= n; back++) {
      guint8 b = ts->held->data[n - back];
      if ((b & 0xC0) == 0x80)
        continue;  /* continuation byte: keep looking for the lead */
      int need = (b & 0xE0) == 0xC0 ? 2 : (b & 0xF0) == 0xE0 ? 3 : (b & 0xF8) == 0xF0 ? 4 : 1;
      if (need > (int)back)
        cut = n - back;
      break;
    }
  }
  gboolean go_on = TRUE;
  if (cut > 0) {
    char *valid = g_utf8_make_valid((const char *)ts->held->data, cut);
    if (ts->fn)
      go_on = ts->fn(valid, ts->user);
    g_free(valid);
    g_byte_array_remove_range(ts->held, 0, cut);
  }
  return go_on;
}

/* Expands each image tag into start + N placeholders + end, as the processor does. Returns the
 * positions (in the expanded list) of each image's start tag. */
static GArray *expand_images(JfChat *c, GArray *ids, GArray *img_starts)
{
  const JfSpecialIds *sp = &c->m->ids;
  GArray *out = g_array_sized_new(FALSE, FALSE, sizeof(int32_t), ids->len);
  for (guint i = 0; i < ids->len; i++) {
    int32_t id = g_array_index(ids, int32_t, i);
    if (id != sp->image_tag) {
      g_array_append_val(out, id);
      continue;
    }
    guint at = out->len;
    g_array_append_val(img_starts, at);
    g_array_append_val(out, sp->image_start_tag);
    for (uint32_t k = 0; k < c->img_tokens; k++)
      g_array_append_val(out, sp->image_tag);
    g_array_append_val(out, sp->image_end_tag);
  }
  return out;
}

static void record_sample(JfChat *c, VkrtSeq *seq, const JfSampling *s, VkrtTensor normed_row)
{
  VkrtTensor logits = vkrt_tensor(c->logits);
  llm_record_logits(c->m->llm, seq, normed_row, 1, logits);
  uint32_t V = llm_config(c->m->llm)->vocab;
  if (s->temperature <= 0.0f)
    vkrt_op_argmax(seq, vkrt_tensor(c->pick), logits, 1, V);
  else if (s->top_k > 0 && s->top_k <= TOPK_MAX)
    vkrt_op_topk(seq, vkrt_tensor(c->topv), vkrt_tensor(c->topi), logits, V, MIN((uint32_t)s->top_k, V));
}

/* Records one decode step into seq: the token whose id and position the host writes to
 * c->ids / c->pos before the submit goes through the model at cache position `pos`, and the
 * next one is chosen. Nothing in it depends on the id, so it can be recorded before the id is
 * known. */
static gboolean record_decode_step(JfChat *c, VkrtSeq *seq, const JfSampling *s, uint32_t pos, GError **error)
{
  JfLlm *llm = c->m->llm;
  const uint64_t row = (uint64_t)llm_config(llm)->hidden * 4;
  VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(c->x), 0, row);
  VkrtTensor o = vkrt_tensor_sub(vkrt_tensor(c->out), 0, row);
  vkrt_seq_begin(seq);
  if (!llm_record_token(llm, seq, c->kv, vkrt_tensor(c->ids), vkrt_tensor(c->pos), pos, x, o, error))
    return FALSE;
  record_sample(c, seq, s, o);
  return TRUE;
}

/* Whether decode step `step` feeds its token through the model (the answer and the context
 * have room for one more), with n_cached tokens in the cache at that step. */
static gboolean decode_feeds(const JfChat *c, const JfSampling *s, int step, uint32_t n_cached)
{
  return step + 1 < s->max_new_tokens && n_cached + 1 < c->capacity;
}

static int32_t read_sample(JfChat *c, const JfSampling *s, JfRng *rng, GError **error)
{
  uint32_t V = llm_config(c->m->llm)->vocab;
  if (s->temperature <= 0.0f) {
    uint32_t id;
    if (!vkrt_buffer_read(c->pick, 0, &id, 4, error))
      return -1;
    return (int32_t)id;
  }
  uint32_t k;
  float *vals;
  uint32_t *ids;
  if (s->top_k > 0 && s->top_k <= TOPK_MAX) {
    k = MIN((uint32_t)s->top_k, V);
    vals = g_new(float, k);
    ids = g_new(uint32_t, k);
    if (!vkrt_buffer_read(c->topv, 0, vals, k * 4, error) || !vkrt_buffer_read(c->topi, 0, ids, k * 4, error)) {
      g_free(vals);
      g_free(ids);
      return -1;
    }
  } else {
    float *all = g_new(float, V);
    if (!vkrt_buffer_read(c->logits, 0, all, (uint64_t)V * 4, error)) {
      g_free(all);
      return -1;
    }
    k = s->top_k > 0 ? MIN((uint32_t)s->top_k, V) : V;
    vals = g_new(float, k);
    ids = g_new(uint32_t, k);
    k = sampler_sort_candidates(all, V, k, vals, ids);
    g_free(all);
  }
  int32_t id = sampler_pick(s, vals, ids, k, rng);
  g_free(vals);
  g_free(ids);
  return id;
}

static gboolean check_cancel(GCancellable *cancel, GError **error)
{
  return !g_cancellable_set_error_if_cancelled(cancel, error);
}

/* Feeds ids[0..n) at cache positions n_cached.., splicing image embeddings where the expanded
 * list has image blocks; leaves the final hidden row of the last chunk in c->out row (n-1)%rows
 * and, if s is not NULL, records sampling for it (a replayed turn samples nothing). */
static gboolean prefill(JfChat *c, const int32_t *ids, uint32_t n, const GArray *img_starts,
                        VkrtBuffer **img_embeds, const JfSampling *s, GCancellable *cancel,
                        uint32_t *last_row, GError **error)
{
  const uint32_t H = llm_config(c->m->llm)->hidden;
  const uint64_t row_bytes = (uint64_t)H * 4;
  for (uint32_t done = 0; done < n;) {
    if (!check_cancel(cancel, error))
      return FALSE;
    uint32_t T = MIN(c->rows, n - done);
    int32_t *pos = g_new(int32_t, T);
    for (uint32_t i = 0; i < T; i++)
      pos[i] = (int32_t)(c->n_cached + done + i);
    gboolean ok = vkrt_buffer_write(c->ids, 0, ids + done, T * 4, error) &&
                  vkrt_buffer_write(c->pos, 0, pos, T * 4, error);
    g_free(pos);
    if (!ok)
      return FALSE;
    vkrt_seq_begin(c->seq);
    VkrtTensor x = vkrt_tensor_sub(vkrt_tensor(c->x), 0, T * row_bytes);
    llm_record_embed(c->m->llm, c->seq, vkrt_tensor(c->ids), T, x);
    /* image blocks: start tag row <- beg_of_und_embed, placeholder rows <- aligned features */
    for (guint im = 0; img_starts && im < img_starts->len; im++) {
      int64_t start = g_array_index(img_starts, guint, im);
      for (int64_t r = start; r < start + 1 + (int64_t)c->img_tokens; r++) {
        if (r < done || r >= (int64_t)(done + T))
          continue;
        VkrtTensor dst = vkrt_tensor_sub(vkrt_tensor(c->x), (uint64_t)(r - done) * row_bytes, row_bytes);
        if (r == start)
          siglip_record_beg_embed(c->m->siglip, c->seq, dst);
        else
          vkrt_seq_copy(c->seq, dst, vkrt_tensor_sub(vkrt_tensor(img_embeds[im]), (uint64_t)(r - start - 1) * row_bytes, row_bytes), row_bytes);
      }
    }
    VkrtTensor out = vkrt_tensor_sub(vkrt_tensor(c->out), 0, T * row_bytes);
    /* a chunk is submitted in groups of layers of at most budget_submit_flops() of work: a long
     * prompt then never makes one long submit (driver watchdogs), and a cancel is seen between
     * groups */
    int n_layers = llm_n_layers(c->m->llm);
    VkrtContext *ctx = c->m->ctx;
    BudgetMeter meter;
    budget_meter_init(&meter, ctx, budget_submit_flops(ctx));
    for (int l = 0; l < n_layers; l++) {
      if (l > 0 && budget_meter_full(&meter)) {
        if (!vkrt_seq_submit(c->seq, error) || !check_cancel(cancel, error))
          return FALSE;
        vkrt_seq_begin(c->seq);
        budget_meter_restart(&meter);
      }
      if (!llm_record_layers(c->m->llm, c->seq, c->kv, x, vkrt_tensor_sub(vkrt_tensor(c->pos), 0, T * 4),
                             vkrt_tensor_none(), T, c->n_cached + done, l, l + 1, error))
        return FALSE;
    }
    llm_record_final_norm(c->m->llm, c->seq, x, T, out);
    if (done + T == n && s) {
      *last_row = T - 1;
      record_sample(c, c->seq, s, vkrt_tensor_sub(vkrt_tensor(c->out), (uint64_t)(T - 1) * row_bytes, row_bytes));
    }
    if (!vkrt_seq_submit(c->seq, error))
      return FALSE;
    done += T;
  }
  return TRUE;
}

/* The conversation as it was before a call, put back when the call fails. */
typedef struct {
  uint32_t n_cached;
  GArray *pending;
} SavedState;

static SavedState state_save(const JfChat *c)
{
  return (SavedState){ c->n_cached, g_array_copy(c->pending) };
}

static void state_restore(JfChat *c, SavedState *st)
{
  c->n_cached = st->n_cached;
  g_array_set_size(c->pending, 0);
  g_array_append_vals(c->pending, st->pending->data, st->pending->len);
}

static void state_clear(SavedState *st)
{
  g_clear_pointer(&st->pending, g_array_unref);
}

/* The ids of one user turn as chat_send feeds them: prefix (the pending ids of the previous
 * answer, or NULL), then the templated question with each image tag expanded into an image
 * block whose start positions go to img_starts. first_turn picks the template with the system
 * prompt and BOS. NULL with an error for bad input. */
static GArray *build_turn(JfChat *c, const char *question, int n_images, gboolean first_turn,
                          const GArray *prefix, GArray *img_starts, GError **error)
{
  JfModel *m = c->m;
  const JfSpecialIds *sp = &m->ids;
  char *q = g_strstrip(g_strdup(question ? question : ""));
  if (!*q && n_images == 0) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "the message is empty");
    g_free(q);
    return NULL;
  }
  if (n_images < 0 || (n_images > 0 && !m->siglip)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "images need the vision encoder, which is not loaded");
    g_free(q);
    return NULL;
  }
  char *text = first_turn ? prompt_first_turn(c->system, m->cfg->proc.image_tag, n_images, q)
                          : prompt_next_turn(m->cfg->proc.image_tag, n_images, q);
  g_free(q);
  GArray *text_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  if (prefix)
    g_array_append_vals(text_ids, prefix->data, prefix->len);
  gboolean ok = tokenizer_encode(m->tok, text, -1, first_turn, text_ids, error);
  g_free(text);
  if (!ok) {
    g_array_unref(text_ids);
    return NULL;
  }
  /* the user's own text may contain the tag string; only the images we were given count */
  guint tags = 0;
  for (guint i = 0; i < text_ids->len; i++)
    tags += g_array_index(text_ids, int32_t, i) == sp->image_tag;
  if ((int)tags != n_images) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT,
                "the message contains the reserved tag %s; remove it", m->cfg->proc.image_tag);
    g_array_unref(text_ids);
    return NULL;
  }
  GArray *ids = expand_images(c, text_ids, img_starts);
  g_array_unref(text_ids);
  return ids;
}

/* The ids of a past answer: its text encoded again, without BOS. */
static GArray *encode_answer(JfChat *c, const char *answer, GError **error)
{
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  if (answer && *answer && !tokenizer_encode(c->m->tok, answer, -1, FALSE, ids, error)) {
    g_array_unref(ids);
    return NULL;
  }
  return ids;
}

/* A turn of n_prompt ids (n_images of them in image blocks) followed by n_answer ids must leave
 * one more position: for the first sampled token (chat_send) or for the EOS that closes a
 * replayed answer. */
static gboolean check_room(JfChat *c, uint32_t n_prompt, uint32_t n_answer, int n_images, gboolean replay,
                           GError **error)
{
  uint32_t room = c->capacity - c->n_cached;
  uint64_t need = (uint64_t)n_prompt + n_answer + 1;
  if (need <= room)
    return TRUE;
  uint32_t left = room > 0 ? room - 1 : 0;
  if (replay) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "the past turn needs %" G_GUINT64_FORMAT " tokens (%u for the message, %u for the answer, 1 "
                "to close it) but only %u are left in the context of %u tokens", need, n_prompt, n_answer,
                room, c->capacity);
  } else if (n_images > 0) {
    uint32_t per_image = c->img_tokens + 2;
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "the message needs %u tokens but only %u are left in the context of %u (each image "
                "takes %u; at most %u image(s) fit with this text)", n_prompt, left, c->capacity, per_image,
                (room > n_prompt - (uint32_t)n_images * per_image + 1)
                  ? (room - (n_prompt - n_images * per_image) - 1) / per_image : 0);
  } else {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
                "the prompt is %u tokens but only %u are left in the context of %u tokens",
                n_prompt, left, c->capacity);
  }
  return FALSE;
}

/* SigLIP embeddings of each image into embeds[i] (new buffers; the caller frees them). */
static gboolean encode_images(JfChat *c, const JfImage *const *images, int n_images, VkrtBuffer **embeds,
                              GCancellable *cancel, GError **error)
{
  JfModel *m = c->m;
  const uint32_t H = llm_config(m->llm)->hidden;
  for (int i = 0; i < n_images; i++) {
    if (!check_cancel(cancel, error))
      return FALSE;
    float *pix = image_preprocess(images[i], &m->cfg->proc);
    if (!(embeds[i] = vkrt_buffer_new(m->ctx, (uint64_t)c->img_tokens * H * 4, error))) {
      g_free(pix);
      return FALSE;
    }
    vkrt_seq_begin(c->seq);
    gboolean ok = siglip_encode(m->siglip, c->seq, pix, vkrt_tensor(embeds[i]), error) &&
                  vkrt_seq_submit(c->seq, error);
    g_free(pix);
    if (!ok)
      return FALSE;
  }
  return TRUE;
}

static void free_embeds(VkrtBuffer **embeds, int n_images)
{
  for (int i = 0; i < n_images; i++)
    if (embeds[i]) vkrt_buffer_free(embeds[i]);
  g_free(embeds);
}

static gboolean is_first_turn(const JfChat *c)
{
  return c->n_cached == 0 && c->pending->len == 0;
}

gboolean chat_send(JfChat *c, const char *question, const JfImage *const *images, int n_images,
                   const JfSampling *s, JfTextFunc on_text, void *user, GCancellable *cancel,
                   char **answer, GError **error)
{
  JfModel *m = c->m;
  const JfSpecialIds *sp = &m->ids;
  const uint32_t H = llm_config(m->llm)->hidden;
  SavedState saved = state_save(c);
  gboolean ok = FALSE, first_turn = is_first_turn(c);
  GArray *img_starts = g_array_new(FALSE, FALSE, sizeof(guint));
  GArray *ids = NULL, *out_ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  VkrtBuffer **embeds = g_new0(VkrtBuffer *, MAX(n_images, 1));
  TextStream ts = { g_byte_array_new(), on_text, user };

  if (s->max_new_tokens < 1) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "max new tokens must be at least 1");
    goto out;
  }
  if (!(ids = build_turn(c, question, n_images, first_turn, first_turn ? NULL : c->pending, img_starts, error)) ||
      !check_room(c, ids->len, 0, n_images, FALSE, error) ||
      !encode_images(c, images, n_images, embeds, cancel, error))
    goto out;

  if (c->dump_dir) {
    g_mkdir_with_parents(c->dump_dir, 0755);
    int64_t shape[2] = { ids->len, 0 };
    if (!dump_array(c, "prompt_ids.npy", NPY_I32, 1, shape, ids->data, error))
      goto out;
    if (n_images > 0) {
      float *e = g_new(float, (gsize)c->img_tokens * H);
      gboolean dok = vkrt_buffer_read(embeds[0], 0, e, (uint64_t)c->img_tokens * H * 4, error);
      int64_t es[2] = { c->img_tokens, H };
      dok = dok && dump_array(c, "image_embeds.npy", NPY_F32, 2, es, e, error);
      g_free(e);
      if (!dok)
        goto out;
    }
  }

  uint32_t last_row = 0;
  if (!prefill(c, (const int32_t *)ids->data, ids->len, img_starts, embeds, s, cancel, &last_row, error))
    goto out;
  c->n_cached += ids->len;
  g_array_set_size(c->pending, 0);

  if (c->dump_dir) {
    uint32_t V = llm_config(m->llm)->vocab;
    float *lg = g_new(float, V);
    int64_t shape[1] = { V };
    gboolean dok = vkrt_buffer_read(c->logits, 0, lg, (uint64_t)V * 4, error) &&
                   dump_array(c, "logits_0.npy", NPY_F32, 1, shape, lg, error);
    g_free(lg);
    if (!dok)
      goto out;
  }

  JfRng rng;
  rng_init(&rng, s->seed);
  gboolean stopped_by_eos = FALSE;
  /* Two sequences in turn: while the GPU runs one step, the host records the next (its
   * recording then costs no GPU time between tokens); only sampling, the id write and the
   * submit sit between two steps. A step recorded for a token that does not come (EOS, a
   * stop) is dropped unrun. */
  VkrtSeq *run = c->seq, *next = c->seq_next;
  if (decode_feeds(c, s, 0, c->n_cached) && !record_decode_step(c, run, s, c->n_cached, error))
    goto out;
  for (int step = 0; step < s->max_new_tokens; step++) {
    int32_t id = read_sample(c, s, &rng, error);
    if (id < 0)
      goto out;
    g_array_append_val(out_ids, id);
    if (id == sp->eos) {
      stopped_by_eos = TRUE;
      break;
    }
    if (!tokenizer_is_special(m->tok, id)) {
      gsize blen = 0;
      const char *b = tokenizer_token_bytes(m->tok, id, &blen);
      if (b && !stream_push(&ts, b, blen, FALSE))
        break;
    }
    if (!decode_feeds(c, s, step, c->n_cached))
      break;  /* answer or context full: the caller sees the latter in chat_n_tokens */
    if (!check_cancel(cancel, error))
      goto out;
    /* feed the token just chosen and sample the next one */
    int32_t posv = (int32_t)c->n_cached;
    if (!vkrt_buffer_write(c->ids, 0, &id, 4, error) || !vkrt_buffer_write(c->pos, 0, &posv, 4, error) ||
        !vkrt_seq_submit_async(run, error))
      goto out;
    gboolean rec_ok = !decode_feeds(c, s, step + 1, c->n_cached + 1) ||
                      record_decode_step(c, next, s, c->n_cached + 1, error);
    if (!vkrt_seq_wait(run, rec_ok ? error : NULL) || !rec_ok)
      goto out;
    c->n_cached++;
    VkrtSeq *t = run;
    run = next;
    next = t;
  }
  stream_push(&ts, "", 0, TRUE);

  /* the last chosen token is not in the cache yet; the template closes an answer with EOS */
  g_array_append_val(c->pending, g_array_index(out_ids, int32_t, out_ids->len - 1));
  if (!stopped_by_eos)
    g_array_append_val(c->pending, sp->eos);
  if (c->dump_dir) {
    int64_t shape[1] = { out_ids->len };
    if (!dump_array(c, "output_ids.npy", NPY_I32, 1, shape, out_ids->data, error))
      goto out;
  }
  if (answer)
    *answer = tokenizer_decode(m->tok, (const int32_t *)out_ids->data, out_ids->len, TRUE);
  ok = TRUE;

out:
  if (!ok)
    state_restore(c, &saved);
  state_clear(&saved);
  free_embeds(embeds, n_images);
  g_array_unref(img_starts);
  if (ids) g_array_unref(ids);
  g_array_unref(out_ids);
  g_byte_array_unref(ts.held);
  return ok;
}

gboolean chat_replay_turn(JfChat *c, const char *question, const JfImage *const *images, int n_images,
                          const char *answer, GCancellable *cancel, GError **error)
{
  SavedState saved = state_save(c);
  gboolean ok = FALSE, first_turn = is_first_turn(c);
  GArray *img_starts = g_array_new(FALSE, FALSE, sizeof(guint));
  GArray *ids = NULL, *answer_ids = NULL;
  VkrtBuffer **embeds = g_new0(VkrtBuffer *, MAX(n_images, 1));

  if (!(ids = build_turn(c, question, n_images, first_turn, first_turn ? NULL : c->pending, img_starts, error)) ||
      !(answer_ids = encode_answer(c, answer, error)) ||
      !check_room(c, ids->len, answer_ids->len, n_images, TRUE, error) ||
      !encode_images(c, images, n_images, embeds, cancel, error))
    goto out;
  /* question and answer in one prefill: the answer's K/V are what decoding them one by one
   * would have stored */
  g_array_append_vals(ids, answer_ids->data, answer_ids->len);
  uint32_t last_row = 0;
  if (!prefill(c, (const int32_t *)ids->data, ids->len, img_starts, embeds, NULL, cancel, &last_row, error))
    goto out;
  c->n_cached += ids->len;
  /* as after an answer that ended with EOS: the EOS is fed with the next turn */
  g_array_set_size(c->pending, 0);
  g_array_append_val(c->pending, c->m->ids.eos);
  ok = TRUE;

out:
  if (!ok)
    state_restore(c, &saved);
  state_clear(&saved);
  free_embeds(embeds, n_images);
  g_array_unref(img_starts);
  if (ids) g_array_unref(ids);
  if (answer_ids) g_array_unref(answer_ids);
  return ok;
}

gboolean chat_measure_turn(JfChat *c, const char *question, int n_images, const char *answer, gboolean first,
                           uint32_t *n_tokens, GError **error)
{
  GArray *img_starts = g_array_new(FALSE, FALSE, sizeof(guint));
  GArray *ids = build_turn(c, question, n_images, first, NULL, img_starts, error);
  GArray *answer_ids = ids ? encode_answer(c, answer, error) : NULL;
  gboolean ok = answer_ids != NULL;
  if (ok)
    *n_tokens = ids->len + answer_ids->len + 1;
  g_array_unref(img_starts);
  if (ids) g_array_unref(ids);
  if (answer_ids) g_array_unref(answer_ids);
  return ok;
}
