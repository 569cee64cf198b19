/* The generation pipeline on the tiny fixture, in process: steering mid-run (CFG, step count),
 * previews, cancel and reuse, reproducible seeds, batches, and the cancellation stress of the
 * reliability issue (many runs of chat and generation cancelled at random moments). */
#include <glib.h>
#include <string.h>
#include <math.h>
#include "generate.h"
#include "chat.h"
#include "npy.h"
#include "test_util.h"

static VkrtContext *ctx;
static JfModel *model;
static NpyArray *noise;
static const char *PROMPT = "A red cube on a blue table";

static JfGenParams params(int steps, float cfg)
{
  JfGenParams p = gen_params_defaults();
  p.prompt = PROMPT;
  p.steps = steps;
  p.cfg = cfg;
  p.noise = noise->data;
  return p;
}

static void free_images(JfImage **imgs, int n)
{
  for (int i = 0; imgs && i < n; i++)
    image_free(imgs[i]);
  g_free(imgs);
}

static gboolean same_image(const JfImage *a, const JfImage *b)
{
  return a->width == b->width && a->height == b->height &&
         memcmp(a->rgba, b->rgba, (size_t)a->width * a->height * 4) == 0;
}

typedef struct {
  JfGenControl *control;
  int calls;
  float cfg_seen[16];
  int steps_seen[16];
  float t_seen[16];
  gboolean had_preview;
  int preview_w;
  int cancel_at;
  GCancellable *cancel;
} Steer;

static void on_step(const JfGenStep *st, void *user)
{
  Steer *s = user;
  g_assert_cmpint(st->step, ==, s->calls);
  s->cfg_seen[s->calls] = st->cfg;
  s->steps_seen[s->calls] = st->steps;
  s->t_seen[s->calls] = st->t;
  if (st->preview) {
    s->had_preview = TRUE;
    s->preview_w = st->preview->width;
  }
  if (s->control && st->step == 0) {
    gen_control_set_cfg(s->control, 5.0f);   /* takes effect at step 1 */
    gen_control_set_steps(s->control, 5);    /* 3 -> 5 steps in total */
  }
  if (s->cancel && st->step == s->cancel_at)
    g_cancellable_cancel(s->cancel);
  s->calls++;
}

static void test_steering(void)
{
  GError *err = NULL;
  JfGen *gen = gen_new(model, 1, &err);
  g_assert_no_error(err);
  JfGenParams p = params(3, 2.0f);
  p.preview = JF_PREVIEW_FAST;
  Steer s = { .control = gen_control_new(2.0f, 3) };
  JfImage **imgs = NULL;
  g_assert_true(gen_run(gen, &p, s.control, on_step, &s, NULL, &imgs, &err));
  g_assert_no_error(err);
  g_assert_cmpint(s.calls, ==, 5);
  g_assert_cmpfloat(s.cfg_seen[0], ==, 2.0f);
  for (int i = 1; i < 5; i++) {
    g_assert_cmpfloat(s.cfg_seen[i], ==, 5.0f);
    g_assert_cmpint(s.steps_seen[i], ==, 5);
  }
  /* re-planned schedule: after one of three steps (t = 1/3) the rest covers [1/3, 1] in 4 steps */
  for (int i = 1; i < 5; i++) {
    double want = 1000.0 * (1.0 / 3.0 + (i - 1) * (2.0 / 3.0) / 4.0);
    g_assert_cmpfloat(fabs(s.t_seen[i] - want), <, 1e-2);
  }
  g_assert_true(s.had_preview);
  g_assert_cmpint(s.preview_w, ==, imgs[0]->width);
  /* another CFG value for the last step's preview, without running the model */
  JfImage *pv = gen_preview_with_cfg(gen, 0, 1.0f);
  g_assert_nonnull(pv);
  g_assert_cmpint(pv->width, ==, imgs[0]->width);
  image_free(pv);
  free_images(imgs, 1);
  gen_control_free(s.control);
  gen_free(gen);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

static void test_cancel_and_reuse(void)
{
  GError *err = NULL;
  JfGen *gen = gen_new(model, 1, &err);
  g_assert_no_error(err);
  JfGenParams p = params(3, 2.0f);
  JfImage **ref = NULL, **again = NULL, **none = NULL;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &ref, &err));
  g_assert_no_error(err);

  Steer s = { .cancel = g_cancellable_new(), .cancel_at = 1 };
  g_assert_false(gen_run(gen, &p, NULL, on_step, &s, s.cancel, &none, &err));
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_clear_error(&err);
  g_assert_cmpint(s.calls, ==, 2);
  g_assert_null(none);
  g_object_unref(s.cancel);

  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &again, &err));
  g_assert_no_error(err);
  g_assert_true(same_image(ref[0], again[0]));
  free_images(ref, 1);
  free_images(again, 1);
  gen_free(gen);
}

static void test_seeds_and_batch(void)
{
  GError *err = NULL;
  JfGen *gen = gen_new(model, 2, &err);
  g_assert_no_error(err);
  JfGenParams p = params(2, 2.0f);
  p.noise = NULL;
  p.seed = 7;
  JfImage **a = NULL, **b = NULL, **c = NULL, **d = NULL;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &a, &err));
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &b, &err));
  p.seed = 8;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &c, &err));
  g_assert_no_error(err);
  g_assert_true(same_image(a[0], b[0]));
  g_assert_false(same_image(a[0], c[0]));
  /* a batch of two: image 0 is the same as the single run with that seed */
  p.seed = 7;
  p.batch = 2;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &d, &err));
  g_assert_no_error(err);
  g_assert_true(same_image(a[0], d[0]));
  g_assert_false(same_image(d[0], d[1]));
  free_images(a, 1);
  free_images(b, 1);
  free_images(c, 1);
  free_images(d, 2);
  gen_free(gen);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

/* --- cancellation stress --------------------------------------------------------------------- */

typedef struct {
  GCancellable *cancel;
  gint64 delay_us;
} Canceller;

static gpointer cancel_later(gpointer data)
{
  Canceller *c = data;
  g_usleep((gulong)c->delay_us);
  g_cancellable_cancel(c->cancel);
  return NULL;
}

static void test_cancel_stress(void)
{
  int runs = g_test_slow() ? 400 : 200;
  GError *err = NULL;
  JfGen *gen = gen_new(model, 1, &err);
  g_assert_no_error(err);
  JfChat *chat = chat_new(model, NULL, 0, &err);
  g_assert_no_error(err);
  JfSampling s = sampler_defaults();
  s.temperature = 0;
  s.max_new_tokens = 4;
  JfGenParams p = params(2, 2.0f);

  JfImage **ref_img = NULL;
  char *ref_text = NULL;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &ref_img, &err));
  g_assert_true(chat_send(chat, "Hello there", NULL, 0, &s, NULL, NULL, NULL, &ref_text, &err));
  g_assert_no_error(err);
  chat_reset(chat);

  GRand *rand = g_rand_new_with_seed(1234);
  int cancelled = 0;
  gint64 worst = 0;
  for (int i = 0; i < runs; i++) {
    Canceller c = { g_cancellable_new(), g_rand_int_range(rand, 0, 40000) };
    GThread *th = g_thread_new("canceller", cancel_later, &c);
    gint64 t0 = g_get_monotonic_time();
    gboolean ok;
    if (i % 2 == 0) {
      JfImage **imgs = NULL;
      ok = gen_run(gen, &p, NULL, NULL, NULL, c.cancel, &imgs, &err);
      if (ok) {
        g_assert_true(same_image(imgs[0], ref_img[0]));
        free_images(imgs, 1);
      }
    } else {
      char *text = NULL;
      ok = chat_send(chat, "Hello there", NULL, 0, &s, NULL, NULL, c.cancel, &text, &err);
      if (ok) {
        g_assert_cmpstr(text, ==, ref_text);
        g_free(text);
      }
      chat_reset(chat);
    }
    g_thread_join(th);
    gint64 after_cancel = g_get_monotonic_time() - t0 - c.delay_us;
    worst = MAX(worst, after_cancel);
    if (!ok) {
      g_assert_error(err, G_IO_ERROR, G_IO_ERROR_CANCELLED);
      g_clear_error(&err);
      cancelled++;
    }
    g_object_unref(c.cancel);
  }
  g_test_message("%d runs, %d cancelled, slowest end after the cancel %.1f ms", runs, cancelled, worst / 1000.0);
  g_assert_cmpint(cancelled, >, 0);

  /* after all that, the results are still those of an uncancelled run */
  JfImage **imgs = NULL;
  char *text = NULL;
  g_assert_true(gen_run(gen, &p, NULL, NULL, NULL, NULL, &imgs, &err));
  g_assert_true(chat_send(chat, "Hello there", NULL, 0, &s, NULL, NULL, NULL, &text, &err));
  g_assert_no_error(err);
  g_assert_true(same_image(imgs[0], ref_img[0]));
  g_assert_cmpstr(text, ==, ref_text);
  free_images(imgs, 1);
  free_images(ref_img, 1);
  g_free(text);
  g_free(ref_text);
  g_rand_free(rand);
  chat_free(chat);
  gen_free(gen);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  GError *err = NULL;
  ctx = test_context_new(true);
  g_assert_nonnull(ctx);
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae"), *np = test_data_path("tiny/inputs/noise.npy");
  model = model_load(ctx, dir, vae, JF_LOAD_ALL, NULL, NULL, &err);
  g_assert_no_error(err);
  noise = npy_read(np, &err);
  g_assert_no_error(err);
  g_free(dir);
  g_free(vae);
  g_free(np);
  g_test_add_func("/generate/steering", test_steering);
  g_test_add_func("/generate/cancel-and-reuse", test_cancel_and_reuse);
  g_test_add_func("/generate/seeds-and-batch", test_seeds_and_batch);
  g_test_add_func("/generate/cancel-stress", test_cancel_stress);
  int rc = g_test_run();
  npy_array_free(noise);
  model_free(model);
  vkrt_context_free(ctx);
  return rc;
}
