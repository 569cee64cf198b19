/* The pipeline warm-up (app/pipelines.h) on the tiny fixture: after it, the first generation and
 * the first chat turns (text, then with an image) build no pipeline, and their results are the
 * ones a context without a warm-up gives (record-only mode leaves nothing behind). */
#include <glib.h>
#include <string.h>
#include "pipelines.h"
#include "llm.h"
#include "ops.h"
#include "npy.h"
#include "test_util.h"

static const char *PROMPT = "A red cube on a blue table";

typedef struct {
  VkrtContext *ctx;
  JfModel *m;
} Loaded;

static Loaded load(void)
{
  Loaded l = { test_context_new(false), NULL };
  g_assert_nonnull(l.ctx);
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae");
  GError *e = NULL;
  l.m = model_load(l.ctx, dir, vae, JF_LOAD_ALL, NULL, NULL, &e);
  test_check_no_error(e);
  g_free(dir);
  g_free(vae);
  return l;
}

static void unload(Loaded *l)
{
  model_free(l->m);
  g_assert_cmpuint(vkrt_context_validation_messages(l->ctx), ==, 0);
  vkrt_context_free(l->ctx);
}

typedef struct {
  JfImage *first_preview;
} Watch;

static void on_step(const JfGenStep *st, void *user)
{
  Watch *w = user;
  if (st->preview && !w->first_preview) {
    w->first_preview = image_new(st->preview->width, st->preview->height);
    memcpy(w->first_preview->rgba, st->preview->rgba, (size_t)st->preview->width * st->preview->height * 4);
  }
}

/* One generation (3 steps, fast previews, fixed noise): the image and the first preview. */
static void generate(JfModel *m, JfGen *g, const float *noise, JfImage **image, JfImage **preview)
{
  JfGenParams p = gen_params_defaults();
  p.prompt = PROMPT;
  p.steps = 3;
  p.noise = noise;
  p.preview = JF_PREVIEW_FAST;
  Watch w = { NULL };
  JfImage **imgs = NULL;
  GError *e = NULL;
  g_assert_true(gen_run(g, &p, NULL, on_step, &w, NULL, &imgs, &e));
  test_check_no_error(e);
  (void)m;
  *image = imgs[0];
  g_free(imgs);
  g_assert_nonnull(w.first_preview);
  *preview = w.first_preview;
}

static void assert_same(const JfImage *a, const JfImage *b)
{
  g_assert_cmpint(a->width, ==, b->width);
  g_assert_cmpint(a->height, ==, b->height);
  g_assert_cmpmem(a->rgba, (size_t)a->width * a->height * 4, b->rgba, (size_t)b->width * b->height * 4);
}

static char *chat_once(JfModel *m, gboolean with_image)
{
  GError *e = NULL;
  JfChat *c = chat_new(m, NULL, 0, &e);
  test_check_no_error(e);
  JfSampling s = sampler_defaults();
  s.max_new_tokens = 4;
  JfImage *img = NULL;
  if (with_image) {
    img = image_new(40, 30);
    for (size_t i = 0; i < 40 * 30 * 4; i++) img->rgba[i] = (uint8_t)(i * 37);
  }
  const JfImage *imgs[1] = { img };
  char *answer = NULL;
  g_assert_true(chat_send(c, "What is in the picture?", with_image ? imgs : NULL, with_image ? 1 : 0, &s, NULL, NULL,
                          NULL, &answer, &e));
  test_check_no_error(e);
  if (img) image_free(img);
  chat_free(c);
  return answer;
}

static void test_warm_up(void)
{
  char *np = test_data_path("tiny/inputs/noise.npy");
  GError *e = NULL;
  NpyArray *noise = npy_read(np, &e);
  test_check_no_error(e);
  g_free(np);

  /* without a warm-up: the reference results, and the pipelines a generation builds */
  Loaded a = load();
  JfGen *ga = gen_new(a.m, 1, &e);
  test_check_no_error(e);
  uint64_t a0 = vkrt_context_pipelines_created(a.ctx);
  JfImage *img_a, *prev_a;
  generate(a.m, ga, noise->data, &img_a, &prev_a);
  g_assert_cmpuint(vkrt_context_pipelines_created(a.ctx), >, a0);
  char *text_a = chat_once(a.m, FALSE), *seen_a = chat_once(a.m, TRUE);
  gen_free(ga);
  unload(&a);

  /* with it: nothing built afterwards, same results */
  Loaded b = load();
  JfGen *gb = gen_new(b.m, 1, &e);
  test_check_no_error(e);
  uint64_t built = 0, submits = vkrt_context_submits(b.ctx);
  g_assert_true(pipelines_warm_up(b.m, gb, NULL, &built, &e));
  test_check_no_error(e);
  g_test_message("warm-up built %" G_GUINT64_FORMAT " pipelines with %" G_GUINT64_FORMAT " submits (the chat turn's)",
                 built, vkrt_context_submits(b.ctx) - submits);
  g_assert_cmpuint(built, >, 0);
  g_assert_false(vkrt_context_record_only(b.ctx));
  uint64_t b0 = vkrt_context_pipelines_created(b.ctx);
  JfImage *img_b, *prev_b;
  generate(b.m, gb, noise->data, &img_b, &prev_b);
  g_assert_cmpuint(vkrt_context_pipelines_created(b.ctx), ==, b0);
  assert_same(img_b, img_a);
  assert_same(prev_b, prev_a);
  char *text_b = chat_once(b.m, FALSE);
  g_assert_cmpuint(vkrt_context_pipelines_created(b.ctx), ==, b0);
  char *seen_b = chat_once(b.m, TRUE);
  g_assert_cmpuint(vkrt_context_pipelines_created(b.ctx), ==, b0);
  g_assert_cmpstr(text_b, ==, text_a);
  g_assert_cmpstr(seen_b, ==, seen_a);
  /* a second warm-up builds nothing */
  g_assert_true(pipelines_warm_up(b.m, gb, NULL, &built, &e));
  g_assert_cmpuint(built, ==, 0);
  gen_free(gb);
  unload(&b);

  image_free(img_a); image_free(prev_a); image_free(img_b); image_free(prev_b);
  g_free(text_a); g_free(seen_a); g_free(text_b); g_free(seen_b);
  npy_array_free(noise);
}

/* Decode past a few hundred keys takes the split-K attention on GPUs; the warm-up's short chat
 * does not get there, its long decode step does. Here (a CPU device) the GPU's selection is
 * forced: the per-query split kernel for few queries, split-K chunks of 64 keys (so from 129
 * keys on). A chat whose question is long enough then builds nothing after the warm-up. */
static void test_warm_up_long_decode(void)
{
  vkrt_ops_force_attention_split(1);
  vkrt_ops_force_splitk_chunk(64);
  Loaded l = load();
  GError *e = NULL;
  uint64_t built = 0;
  g_assert_true(pipelines_warm_up(l.m, NULL, NULL, &built, &e));
  test_check_no_error(e);
  GString *q = g_string_new("Please answer briefly:");
  for (int i = 0; i < 40; i++) g_string_append(q, " why is the sky blue and the grass green?");
  JfChat *c = chat_new(l.m, NULL, 0, &e);
  test_check_no_error(e);
  uint64_t n0 = vkrt_context_pipelines_created(l.ctx);
  JfSampling s = sampler_defaults();
  s.max_new_tokens = 3;
  char *answer = NULL;
  g_assert_true(chat_send(c, q->str, NULL, 0, &s, NULL, NULL, NULL, &answer, &e));
  test_check_no_error(e);
  g_assert_cmpuint(chat_n_tokens(c), >, 2 * 64);
  g_assert_cmpstr(vkrt_ops_attention_path_for(vkrt_context_info(l.ctx), 1, llm_config(l.m->llm)->n_heads,
                                              llm_config(l.m->llm)->head_dim, chat_n_tokens(c),
                                              vkrt_ops_attention_scratch_bytes(l.ctx)), ==, "splitk");
  g_assert_cmpuint(vkrt_context_pipelines_created(l.ctx), ==, n0);
  g_free(answer);
  chat_free(c);
  g_string_free(q, TRUE);
  vkrt_ops_force_splitk_chunk(0);
  vkrt_ops_force_attention_split(-1);
  unload(&l);
}

/* A cancelled warm-up says so and leaves the context out of record-only mode. */
static void test_cancel(void)
{
  Loaded l = load();
  GError *e = NULL;
  JfGen *g = gen_new(l.m, 1, &e);
  test_check_no_error(e);
  GCancellable *c = g_cancellable_new();
  g_cancellable_cancel(c);
  g_assert_false(pipelines_warm_up(l.m, g, c, NULL, &e));
  g_assert_error(e, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&e);
  g_assert_false(vkrt_context_record_only(l.ctx));
  g_object_unref(c);
  gen_free(g);
  unload(&l);
}

static void test_cache_dir(void)
{
  g_setenv("JANUSFLOW_PIPELINE_CACHE", "off", TRUE);
  g_assert_null(pipelines_cache_dir());
  g_setenv("JANUSFLOW_PIPELINE_CACHE", "", TRUE);
  g_assert_null(pipelines_cache_dir());
  g_setenv("JANUSFLOW_PIPELINE_CACHE", "/somewhere/else", TRUE);
  char *d = pipelines_cache_dir();
  g_assert_cmpstr(d, ==, "/somewhere/else");
  g_free(d);
  g_unsetenv("JANUSFLOW_PIPELINE_CACHE");
  d = pipelines_cache_dir();
  g_assert_true(g_str_has_suffix(d, "/janusflow/pipelines"));
  g_free(d);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/pipelines/warm-up", test_warm_up);
  g_test_add_func("/pipelines/cancel", test_cancel);
  g_test_add_func("/pipelines/warm-up-long-decode", test_warm_up_long_decode);
  g_test_add_func("/pipelines/cache-dir", test_cache_dir);
  return g_test_run();
}
