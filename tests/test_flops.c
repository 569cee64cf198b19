/* No wasted work (issue 7): the FLOPs the engine dispatches for one Euler step of the real
 * generation loop (counted by the op layer) are within 5% of the minimum the model's math needs
 * with the prompt K/V reused and the CFG rows batched (bench_cost_euler_step), and a step takes
 * only a few queue submits. Steps after the first replay their recorded command buffers (no new
 * dispatches recorded) with the same FLOPs and submits, a new shape re-records, and replayed
 * runs, steering included, give the same images as re-recording every step. Also the bench command end to end on the tiny model: every stage runs,
 * its JSON report is well-formed, and a model too large for the device is refused before anything
 * is written. No timing is asserted anywhere. */
#include <glib.h>
#include <glib/gstdio.h>
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include "model.h"
#include "generate.h"
#include "prompt.h"
#include "bench_cost.h"
#include "test_util.h"

typedef struct {
  VkrtContext *ctx;
  JfGen *gen;                /* set: compare each preview with the host's CFG of that step */
  JfGenControl *control;     /* set: steer at steps 0 and 2 */
  int n;
  uint64_t start_dispatches, start_submits;
  uint64_t flops[16], submits[16], dispatches[16];
  double gpu_ms[16];
  float cfg[16], t[16];
  JfImage *preview[16];
} Watch;

/* The x0 preview the GPU made this step, against the host's from the same step's velocities with
 * the CFG weight and t the step reports: both come through step_params on the GPU, so a replay
 * that used stale values fails here. Rounding may differ by one level. */
static void check_preview_cfg(JfGen *g, const JfGenStep *info)
{
  JfImage *host = gen_preview_with_cfg(g, 0, info->cfg);
  g_assert_nonnull(host);
  g_assert_cmpint(host->width, ==, info->preview->width);
  g_assert_cmpint(host->height, ==, info->preview->height);
  size_t n = (size_t)host->width * host->height * 4;
  int worst = 0;
  for (size_t i = 0; i < n; i++)
    worst = MAX(worst, abs((int)host->rgba[i] - (int)info->preview->rgba[i]));
  g_assert_cmpint(worst, <=, 2);
  image_free(host);
}

static void on_step(const JfGenStep *info, void *user)
{
  Watch *w = user;
  g_assert_cmpint(info->step, <, 16);
  int k = info->step;
  w->flops[k] = vkrt_context_flops(w->ctx);
  w->submits[k] = vkrt_context_submits(w->ctx);
  w->dispatches[k] = vkrt_context_recorded_dispatches(w->ctx);
  w->gpu_ms[k] = info->gpu_ms;
  w->cfg[k] = info->cfg;
  w->t[k] = info->t;
  if (info->preview) {
    w->preview[k] = image_new(info->preview->width, info->preview->height);
    memcpy(w->preview[k]->rgba, info->preview->rgba, (size_t)info->preview->width * info->preview->height * 4);
    if (w->gen)
      check_preview_cfg(w->gen, info);
  }
  if (w->control && k == 0) {
    gen_control_set_cfg(w->control, 5.0f);  /* takes effect at step 1 */
    gen_control_set_steps(w->control, 5);   /* 3 -> 5: dt and t re-planned */
  }
  if (w->control && k == 2)
    gen_control_set_cfg(w->control, 1.5f);
  w->n = k + 1;
}

static void watch_clear(Watch *w)
{
  for (int i = 0; i < 16; i++)
    g_clear_pointer(&w->preview[i], image_free);
}

/* Dispatches recorded by step k alone (step 0 also holds the prompt pass). */
static uint64_t step_dispatches(const Watch *w, int k)
{
  return w->dispatches[k] - (k ? w->dispatches[k - 1] : w->start_dispatches);
}

static void check_step_flops(int batch, gboolean one_layer_per_part)
{
  GError *e = NULL;
  VkrtContext *ctx = vkrt_context_new(&(VkrtOptions){ 0 }, &e);
  g_assert_no_error(e);
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae"), *pf = test_data_path("tiny/inputs/prompt_gen.txt");
  char *prompt = NULL;
  g_assert_true(g_file_get_contents(pf, &prompt, NULL, NULL));
  JfModel *m = model_load(ctx, dir, vae, JF_LOAD_ALL, NULL, NULL, &e);
  g_assert_no_error(e);
  JfGen *g = gen_new(m, batch, &e);
  g_assert_no_error(e);

  /* P as gen_run computes it: the generation prompt's ids without the trailing tag */
  char *text = prompt_generation(prompt, m->cfg->proc.image_start_tag);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  g_assert_true(tokenizer_encode(m->tok, text, -1, TRUE, ids, &e));
  uint32_t P = ids->len - 1;
  BenchCost min;
  g_assert_true(bench_cost_euler_step(m->cfg, JF_KV_F32, m->st, P, (uint32_t)batch, &min, &e));
  g_assert_no_error(e);

  Watch w = { .ctx = ctx, .start_dispatches = vkrt_context_recorded_dispatches(ctx) };
  JfGenParams p = gen_params_defaults();
  p.prompt = prompt;
  p.steps = 3;
  p.batch = batch;
  p.seed = 7;
  JfImage **images = NULL;
  g_assert_true(gen_run(g, &p, NULL, on_step, &w, NULL, &images, &e));
  g_assert_no_error(e);
  g_assert_cmpint(w.n, ==, 3);
  for (int i = 0; i < batch; i++)
    image_free(images[i]);
  g_free(images);

  /* steps 1 and 2 (step 0's counters also hold the prompt pass): same work, near the minimum,
   * replayed from step 0's recording */
  int n_layers = m->cfg->llm.n_layers;
  g_assert_cmpuint(step_dispatches(&w, 0), >, 0);
  for (int k = 1; k < 3; k++) {
    double counted = (double)(w.flops[k] - w.flops[k - 1]);
    uint64_t submits = w.submits[k] - w.submits[k - 1];
    g_test_message("batch %d, P %u, step %d: counted %.0f FLOPs, minimum %.0f (ratio %.4f), %" G_GUINT64_FORMAT
                   " submits, %" G_GUINT64_FORMAT " dispatches recorded, %.3f GPU ms", batch, P, k, counted,
                   min.flops, counted / min.flops, submits, step_dispatches(&w, k), w.gpu_ms[k]);
    g_assert_cmpfloat(fabs(counted / min.flops - 1.0), <=, 0.05);
    g_assert_cmpuint(step_dispatches(&w, k), ==, 0);
    /* per image, one submit per budget_submit_flops() of LLM layers (driver watchdogs,
     * cancellation), the tail in the last: the tiny model's whole step is far below the default
     * budget (one part per image), and a budget of 1 FLOP puts every layer in a part of its own.
     * Without host-mapped memory the per-step writes add staging transfers. */
    uint64_t parts = (uint64_t)batch * (one_layer_per_part ? (uint64_t)n_layers : 1);
    if (vkrt_context_host_mapped(ctx))
      g_assert_cmpuint(submits, ==, parts);
    g_assert_cmpuint(submits, >=, parts);
    g_assert_cmpuint(submits, <=, parts + 2);
    /* timestamps are written by the replayed command buffers too */
    if (vkrt_context_info(ctx)->has_timestamps)
      g_assert_cmpfloat(w.gpu_ms[k], >, 0);
  }
  g_assert_cmpuint(w.flops[2] - w.flops[1], ==, w.flops[1] - w.flops[0]);
  g_assert_cmpuint(w.submits[2] - w.submits[1], ==, w.submits[1] - w.submits[0]);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);

  g_array_unref(ids);
  g_free(text);
  gen_free(g);
  model_free(m);
  vkrt_context_free(ctx);
  g_free(prompt);
  g_free(pf);
  g_free(dir);
  g_free(vae);
}

static void test_euler_step_batch1(void) { check_step_flops(1, FALSE); }
static void test_euler_step_batch2(void) { check_step_flops(2, FALSE); }
static void test_euler_step_small_budget(void)
{
  g_setenv("JANUSFLOW_SUBMIT_GFLOP", "1e-9", TRUE);
  check_step_flops(2, TRUE);
  g_unsetenv("JANUSFLOW_SUBMIT_GFLOP");
}

static JfImage **run_watched(JfGen *g, const char *prompt, int batch, JfPreviewMode preview, JfGenControl *control,
                             Watch *w, int expect_error)
{
  GError *e = NULL;
  JfGenParams p = gen_params_defaults();
  p.prompt = prompt;
  p.steps = 3;
  p.cfg = 2.0f;
  p.batch = batch;
  p.seed = 11;
  p.preview = preview;
  w->control = control;
  w->gen = preview != JF_PREVIEW_NONE ? g : NULL;
  w->start_dispatches = vkrt_context_recorded_dispatches(w->ctx);
  w->start_submits = vkrt_context_submits(w->ctx);
  JfImage **images = NULL;
  gboolean ok = gen_run(g, &p, control, on_step, w, NULL, &images, &e);
  if (expect_error) {
    g_assert_false(ok);
    g_assert_error(e, VKRT_ERROR, expect_error);
    g_clear_error(&e);
    return NULL;
  }
  g_assert_no_error(e);
  g_assert_true(ok);
  return images;
}

static void assert_same_images(JfImage **a, JfImage **b, int n)
{
  for (int i = 0; i < n; i++) {
    g_assert_cmpint(a[i]->width, ==, b[i]->width);
    g_assert_cmpint(a[i]->height, ==, b[i]->height);
    g_assert_cmpmem(a[i]->rgba, (gsize)a[i]->width * a[i]->height * 4, b[i]->rgba,
                    (gsize)b[i]->width * b[i]->height * 4);
  }
}

static void free_images(JfImage **imgs, int n)
{
  for (int i = 0; i < n; i++)
    image_free(imgs[i]);
  g_free(imgs);
}

/* Replay against re-recording every step on one JfGen: a steered batch-2 run with previews (CFG
 * and step count changed mid-run, so cfg, dt and t differ from step to step), then a batch-1 run
 * on the same JfGen (a new shape: re-recorded, and its replayed steps cost batch 1's minimum,
 * not batch 2's). Images and previews must be identical byte for byte. */
static void test_euler_step_replay(void)
{
  GError *e = NULL;
  VkrtContext *ctx = vkrt_context_new(&(VkrtOptions){ 0 }, &e);
  g_assert_no_error(e);
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae"), *pf = test_data_path("tiny/inputs/prompt_gen.txt");
  char *prompt = NULL;
  g_assert_true(g_file_get_contents(pf, &prompt, NULL, NULL));
  JfModel *m = model_load(ctx, dir, vae, JF_LOAD_ALL, NULL, NULL, &e);
  g_assert_no_error(e);
  JfGen *g = gen_new(m, 2, &e);
  g_assert_no_error(e);
  char *text = prompt_generation(prompt, m->cfg->proc.image_start_tag);
  GArray *ids = g_array_new(FALSE, FALSE, sizeof(int32_t));
  g_assert_true(tokenizer_encode(m->tok, text, -1, TRUE, ids, &e));
  BenchCost min1;
  g_assert_true(bench_cost_euler_step(m->cfg, JF_KV_F32, m->st, ids->len - 1, 1, &min1, &e));

  Watch rs[2] = { { .ctx = ctx }, { .ctx = ctx } }, r1[2] = { { .ctx = ctx }, { .ctx = ctx } };
  JfImage **steered[2], **one[2];
  for (int replay = 1; replay >= 0; replay--) {
    gen_set_replay(g, replay);
    JfGenControl *c = gen_control_new(2.0f, 3);
    steered[replay] = run_watched(g, prompt, 2, JF_PREVIEW_FAST, c, &rs[replay], 0);
    gen_control_free(c);
    one[replay] = run_watched(g, prompt, 1, JF_PREVIEW_NONE, NULL, &r1[replay], 0);
  }

  /* the steering took effect: 5 steps, CFG 2, 5, 5, 1.5, 1.5, re-planned t after step 0 */
  g_assert_cmpint(rs[1].n, ==, 5);
  const float want_cfg[5] = { 2.0f, 5.0f, 5.0f, 1.5f, 1.5f };
  for (int k = 0; k < 5; k++) {
    g_assert_cmpfloat(rs[1].cfg[k], ==, want_cfg[k]);
    g_assert_cmpfloat(fabs(rs[1].t[k] - 1000.0 * (k ? 1.0 / 3.0 + (k - 1) * (2.0 / 3.0) / 4.0 : 0.0)), <, 1e-2);
  }
  for (int replay = 0; replay < 2; replay++) {
    /* step 0 records (the new shape of the batch-1 run too); later steps record nothing when
     * replaying and the same as step 0's step part otherwise */
    const Watch *ws[2] = { &rs[replay], &r1[replay] };
    for (int r = 0; r < 2; r++) {
      g_assert_cmpuint(step_dispatches(ws[r], 0), >, 0);
      for (int k = 1; k < ws[r]->n; k++) {
        if (replay)
          g_assert_cmpuint(step_dispatches(ws[r], k), ==, 0);
        else
          g_assert_cmpuint(step_dispatches(ws[r], k), ==, step_dispatches(ws[r], 1));
        g_assert_cmpuint(ws[r]->submits[k] - ws[r]->submits[k - 1], ==, ws[r]->submits[1] - ws[r]->submits[0]);
        g_assert_cmpuint(ws[r]->flops[k] - ws[r]->flops[k - 1], ==, ws[r]->flops[1] - ws[r]->flops[0]);
      }
    }
    g_assert_cmpuint(step_dispatches(&rs[0], 1), >, 0);
    double counted = (double)(r1[replay].flops[2] - r1[replay].flops[1]);
    g_assert_cmpfloat(fabs(counted / min1.flops - 1.0), <=, 0.05);
  }
  /* same work either way; the recording is the only thing replay saves */
  g_assert_cmpuint(rs[1].flops[3] - rs[1].flops[2], ==, rs[0].flops[3] - rs[0].flops[2]);
  g_assert_cmpuint(rs[1].submits[3] - rs[1].submits[2], ==, rs[0].submits[3] - rs[0].submits[2]);
  g_assert_cmpuint(r1[1].flops[2] - r1[1].flops[1], ==, r1[0].flops[2] - r1[0].flops[1]);
  g_assert_cmpint(rs[0].n, ==, rs[1].n);
  for (int k = 0; k < rs[1].n; k++) {
    g_assert_nonnull(rs[1].preview[k]);
    assert_same_images(&rs[1].preview[k], &rs[0].preview[k], 1);
  }
  assert_same_images(steered[1], steered[0], 2);
  assert_same_images(one[1], one[0], 1);
  g_assert_cmpuint(vkrt_context_validation_messages(ctx), ==, 0);

  /* a device lost in a replayed part (the first submit of step 1) fails the run as it would a
   * recorded one; with staging transfers the count of sequence submits is not known here */
  if (vkrt_context_host_mapped(ctx)) {
    gen_set_replay(g, TRUE);
    Watch lost = { .ctx = ctx };
    vkrt_context_fail_submit_after(ctx, (uint32_t)(r1[1].submits[0] - r1[1].start_submits) + 1);
    g_assert_null(run_watched(g, prompt, 1, JF_PREVIEW_NONE, NULL, &lost, VKRT_ERROR_DEVICE_LOST));
    g_assert_cmpint(lost.n, ==, 1);
    g_test_message("device lost in step 1's replay: reported after %d finished step", lost.n);
  }

  for (int replay = 0; replay < 2; replay++) {
    free_images(steered[replay], 2);
    free_images(one[replay], 1);
    watch_clear(&rs[replay]);
    watch_clear(&r1[replay]);
  }
  g_array_unref(ids);
  g_free(text);
  gen_free(g);
  model_free(m);
  vkrt_context_free(ctx);
  g_free(prompt);
  g_free(pf);
  g_free(dir);
  g_free(vae);
}

/* The analytic model against the spec's arithmetic for the real 1.3B shapes (MODEL.md §6.2). */
static void test_cost_full_shapes(void)
{
  JfModelConfig cfg = { 0 };
  cfg.llm = (JfLlmConfig){ .hidden = 2048, .n_layers = 24, .n_heads = 16, .n_kv_heads = 16, .head_dim = 128,
                           .intermediate = 5632, .vocab = 102400, .max_pos = 16384 };
  cfg.siglip = (JfSiglipConfig){ .image_size = 384, .patch = 16, .width = 1024, .layers = 24, .heads = 16,
                                 .mlp_dim = 4096 };
  /* one decoded token at position 0: linears 2.466 GFLOP + lm_head 0.419 GFLOP, ~3 GB of weights */
  BenchCost d = bench_cost_decode(&cfg, JF_KV_F32, 0, 1);
  g_assert_cmpfloat(fabs(d.flops / (2.466e9 + 0.419e9) - 1), <, 0.002);
  g_assert_cmpfloat(d.bytes, >, 2.8e9);
  g_assert_cmpfloat(d.bytes, <, 3.0e9);
  /* SigLIP + aligner: about 384 GFLOP per image */
  BenchCost s = bench_cost_siglip(&cfg);
  g_assert_cmpfloat(fabs(s.flops / 384e9 - 1), <, 0.02);
  /* prefill of 640 tokens: 640 x 2.466 + causal attention (40 GFLOP) + one lm_head row; the
   * reference bench counts the full 640 x 640 attention square and prints 1659 */
  BenchCost p = bench_cost_prefill(&cfg, JF_KV_F32, 640);
  g_assert_cmpfloat(fabs(p.flops / 1.619e12 - 1), <, 0.005);
}

/* --- the bench command ------------------------------------------------------------------------ */

static char **bench_env(const char *cache)
{
  char **env = g_get_environ();
  /* the bench's synthetic checkpoints go to a fresh cache; Mesa's shader cache, which also
   * follows XDG_CACHE_HOME, stays where it was: a cold one costs lavapipe tens of seconds of
   * LLVM JIT per run */
  if (!g_environ_getenv(env, "MESA_SHADER_CACHE_DIR")) {
    char *mesa = g_build_filename(g_get_user_cache_dir(), "mesa_shader_cache", NULL);
    env = g_environ_setenv(env, "MESA_SHADER_CACHE_DIR", mesa, TRUE);
    g_free(mesa);
  }
  return g_environ_setenv(env, "XDG_CACHE_HOME", cache, TRUE);
}

static JsonObject *run_bench(const char *const *extra, const char *cache, JsonParser **parser, int *status,
                             char **err_out)
{
  const char *exe = g_getenv("JF_JANUSFLOW");
  g_assert_nonnull(exe);
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)exe);
  g_ptr_array_add(argv, "bench");
  for (int i = 0; extra[i]; i++)
    g_ptr_array_add(argv, (char *)extra[i]);
  g_ptr_array_add(argv, NULL);
  char **env = bench_env(cache);
  char *out = NULL, *err = NULL;
  GError *e = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, env, G_SPAWN_DEFAULT, NULL, NULL, &out, &err, status, &e));
  g_assert_no_error(e);
  g_ptr_array_free(argv, TRUE);
  g_strfreev(env);
  g_test_message("stderr: %s", err);
  JsonObject *o = NULL;
  if (g_spawn_check_wait_status(*status, NULL)) {
    *parser = json_parser_new();
    g_assert_true(json_parser_load_from_data(*parser, out, -1, &e));
    g_assert_no_error(e);
    o = json_node_get_object(json_parser_get_root(*parser));
  }
  g_free(out);
  if (err_out)
    *err_out = err;
  else
    g_free(err);
  return o;
}

static void check_report(JsonObject *o, gboolean euler_near_minimum)
{
  JsonObject *stages = json_object_get_object_member(o, "stages");
  const char *names[] = { "prefill", "decode", "siglip", "euler_step", "vae_decode", "preview" };
  for (size_t i = 0; i < G_N_ELEMENTS(names); i++) {
    g_assert_true(json_object_has_member(stages, names[i]));
    JsonObject *s = json_object_get_object_member(stages, names[i]);
    g_assert_false(json_object_has_member(s, "error"));
    g_assert_cmpfloat(json_object_get_double_member(s, "wall_ms_median"), >, 0);
    /* preview is a read-back: bytes but no FLOPs */
    if (g_strcmp0(names[i], "preview") == 0)
      g_assert_cmpfloat(json_object_get_double_member(s, "flops"), ==, 0);
    else
      g_assert_cmpfloat(json_object_get_double_member(s, "flops"), >, 0);
    g_assert_cmpfloat(json_object_get_double_member(s, "bytes_min"), >, 0);
    g_assert_cmpuint(json_array_get_length(json_object_get_array_member(s, "wall_ms")), ==, 1);
  }
  JsonObject *eu = json_object_get_object_member(stages, "euler_step");
  double ratio = json_object_get_double_member(eu, "flops_counted") / json_object_get_double_member(eu, "flops");
  g_test_message("bench euler_step counted / analytic = %.4f", ratio);
  if (euler_near_minimum)
    g_assert_cmpfloat(fabs(ratio - 1), <=, 0.05);
}

static void test_bench_model_folder(void)
{
  char *dir = test_data_path("tiny/janusflow"), *vae = test_data_path("tiny/vae");
  char *cache = test_tmp_dir_new("jf-bench-XXXXXX");
  const char *args[] = { "--model", dir, "--vae", vae, "--json", "--repeat", "1", "--warmup", "0", "--no-ceiling", NULL };
  JsonParser *parser = NULL;
  int status = 0;
  JsonObject *o = run_bench(args, cache, &parser, &status, NULL);
  g_assert_nonnull(o);
  check_report(o, TRUE);
  g_object_unref(parser);
  g_rmdir(cache);
  g_free(cache);
  g_free(dir);
  g_free(vae);
}

/* --synthetic tiny: the checkpoint is written into the cache once, and the prompt lengths are the
 * reference bench's (DeepSeek-LLM tokenizer): chat 80 tokens with 16 image tokens, P = 23. */
static void test_bench_synthetic(void)
{
  char *cache = test_tmp_dir_new("jf-bench-XXXXXX");
  const char *args[] = { "--synthetic", "tiny", "--json", "--repeat", "1", "--warmup", "0", NULL };
  JsonParser *parser = NULL;
  int status = 0;
  JsonObject *o = run_bench(args, cache, &parser, &status, NULL);
  g_assert_nonnull(o);
  /* warm-up 0: stages still run once; euler_step keeps its one warm-up step */
  check_report(o, TRUE);
  JsonObject *sh = json_object_get_object_member(o, "shapes");
  g_assert_cmpint(json_object_get_int_member(sh, "chat_tokens"), ==, 80);
  g_assert_cmpint(json_object_get_int_member(sh, "chat_image_tokens"), ==, 16);
  g_assert_cmpint(json_object_get_int_member(sh, "gen_prefix"), ==, 23);
  JsonObject *ce = json_object_get_object_member(o, "ceiling");
  g_assert_cmpfloat(json_object_get_double_member(ce, "gemm_flops_per_s"), >, 0);
  g_assert_cmpfloat(json_object_get_double_member(ce, "copy_bytes_per_s"), >, 0);
  char *mark = g_build_filename(cache, "janusflow", "synthetic", "tiny", "complete", NULL);
  g_assert_true(g_file_test(mark, G_FILE_TEST_EXISTS));
  g_free(mark);
  g_object_unref(parser);
  test_rm_rf(cache);
  g_free(cache);
}

/* A model whose weights exceed the device heap is refused before the 4 GB checkpoint is written
 * (lavapipe: 2 GiB). Skipped on devices that could hold it. */
static void test_bench_too_large(void)
{
  GError *e = NULL;
  VkrtContext *ctx = vkrt_context_new(&(VkrtOptions){ 0 }, &e);
  g_assert_no_error(e);
  uint64_t heap = vkrt_context_info(ctx)->device_local_bytes;
  vkrt_context_free(ctx);
  if (heap == 0 || heap > 4000000000ull) {
    g_test_skip("the device could hold the full model");
    return;
  }
  char *cache = test_tmp_dir_new("jf-bench-XXXXXX");
  const char *args[] = { "--synthetic", "full", "--json", NULL };
  JsonParser *parser = NULL;
  int status = 0;
  char *err = NULL;
  JsonObject *o = run_bench(args, cache, &parser, &status, &err);
  g_assert_null(o);
  g_assert_true(WIFEXITED(status));
  g_assert_cmpint(WEXITSTATUS(status), ==, 2);
  g_assert_nonnull(strstr(err, "nothing was written"));
  g_assert_nonnull(strstr(err, "device-local heap"));
  char *root = g_build_filename(cache, "janusflow", NULL);
  g_assert_false(g_file_test(root, G_FILE_TEST_EXISTS));
  g_free(root);
  g_free(err);
  test_rm_rf(cache);
  g_free(cache);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/flops/cost-full-shapes", test_cost_full_shapes);
  g_test_add_func("/flops/euler-step/batch1", test_euler_step_batch1);
  g_test_add_func("/flops/euler-step/batch2", test_euler_step_batch2);
  g_test_add_func("/flops/euler-step/small-budget", test_euler_step_small_budget);
  g_test_add_func("/flops/euler-step/replay", test_euler_step_replay);
  g_test_add_func("/bench/model-folder", test_bench_model_folder);
  g_test_add_func("/bench/synthetic-tiny", test_bench_synthetic);
  g_test_add_func("/bench/too-large", test_bench_too_large);
  return g_test_run();
}
