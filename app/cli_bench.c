/* janusflow bench: times every stage on this device against the device's own ceiling, on a model
 * folder or on a synthetic random-weight model. A table (stderr with --json, else stdout) and,
 * with --json, one JSON object on stdout. */
#include "cli.h"
#include "bench.h"
#include "generate.h"
#include "siglip.h"
#include "uvit.h"
#include "vae.h"
#include "jf-config.h"
#include "jf-bench-paths.h"
#include <json-glib/json-glib.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#define DEFAULT_PROMPT "A red fox sitting in fresh snow at sunrise, watercolor painting, soft light."

typedef struct {
  char *model, *vae, *synthetic, *stages, *device, *prompt, *tokenizer, *cfg_s, *weights;
  int steps, repeat, warmup, new_tokens;
  gboolean json, no_ceiling;
} Args;

static void args_free(Args *a)
{
  g_free(a->model); g_free(a->vae); g_free(a->synthetic); g_free(a->stages);
  g_free(a->device); g_free(a->prompt); g_free(a->tokenizer); g_free(a->cfg_s); g_free(a->weights);
}

/* --stages: names, the reference's names for the same work, and groups. */
static gboolean parse_stages(const char *list, gboolean want[BENCH_N_STAGES], GError **error)
{
  memset(want, 0, sizeof(gboolean) * BENCH_N_STAGES);
  char **parts = g_strsplit(list ? list : "all", ",", -1);
  gboolean ok = TRUE;
  for (char **p = parts; *p && ok; p++) {
    char *n = g_strstrip(*p);
    if (!*n)
      continue;
    if (!strcmp(n, "all")) {
      for (int i = 0; i < BENCH_N_STAGES; i++) want[i] = TRUE;
    } else if (!strcmp(n, "chat")) {
      want[BENCH_PREFILL] = want[BENCH_DECODE] = want[BENCH_SIGLIP] = TRUE;
    } else if (!strcmp(n, "euler") || !strcmp(n, "euler_cached") || !strcmp(n, "generate")) {
      want[BENCH_EULER_STEP] = TRUE;
      if (!strcmp(n, "generate")) want[BENCH_VAE_DECODE] = want[BENCH_PREVIEW] = want[BENCH_FIRST_PREVIEW] = TRUE;
    } else if (!strcmp(n, "vae")) {
      want[BENCH_VAE_DECODE] = TRUE;
    } else {
      int i = 0;
      while (i < BENCH_N_STAGES && strcmp(n, bench_stage_name(i)))
        i++;
      if (i == BENCH_N_STAGES) {
        g_set_error(error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                    "--stages: unknown stage '%s' (prefill, decode, siglip, euler_step, vae_decode, preview, "
                    "first_preview; "
                    "groups all, chat, euler, generate, vae)", n);
        ok = FALSE;
      } else {
        want[i] = TRUE;
      }
    }
  }
  g_strfreev(parts);
  return ok;
}

/* The DeepSeek-LLM tokenizer that sets the prompt lengths of synthetic models: --tokenizer,
 * $JANUSFLOW_BENCH_TOKENIZER, or the copy in this source tree's tests/data. */
static char *find_ref_tokenizer(const Args *a)
{
  const char *c[] = { a->tokenizer, g_getenv("JANUSFLOW_BENCH_TOKENIZER"), JF_BENCH_TOKENIZER };
  for (size_t i = 0; i < G_N_ELEMENTS(c); i++) {
    if (!c[i] || !*c[i])
      continue;
    char *p = g_file_test(c[i], G_FILE_TEST_IS_DIR) ? g_build_filename(c[i], "tokenizer.json", NULL) : g_strdup(c[i]);
    if (g_file_test(p, G_FILE_TEST_IS_REGULAR))
      return p;
    g_free(p);
  }
  return NULL;
}

static void on_progress(double fraction, const char *what, void *user)
{
  (void)fraction;
  (void)user;
  fprintf(stderr, "janusflow bench: %s\n", what);
}

/* Refuses, before its checkpoint is written, a synthetic model whose weights alone exceed the
 * device-local heap (e.g. `full` on lavapipe's 2 GiB); model_load checks real folders. */
static gboolean check_fits(const VkrtDeviceInfo *di, const char *what, double weight_bytes, GError **error)
{
  if (di->device_local_bytes == 0 || weight_bytes <= 0.95 * (double)di->device_local_bytes)
    return TRUE;
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE,
              "%s needs about %.2f GB of device memory for its weights alone (bf16), but %s has a %.2f GiB "
              "device-local heap; use a smaller model (--synthetic small fits 2 GiB) or a device with more memory",
              what, weight_bytes / 1e9, di->name, (double)di->device_local_bytes / (1024.0 * 1024.0 * 1024.0));
  return FALSE;
}

static double loaded_weight_bytes(const JfModel *m)
{
  double b = 0;
  if (m->llm) b += (double)llm_weight_bytes(m->llm);
  if (m->siglip) b += (double)siglip_weight_bytes(m->siglip);
  if (m->uvit) b += (double)uvit_weight_bytes(m->uvit);
  if (m->vae) b += (double)vae_weight_bytes(m->vae);
  return b;
}

typedef struct {
  double gpu_med, wall_med, gpu_min, wall_min;
  double time_s;          /* GPU median when timed, else wall: what FLOP/s and bytes/s use */
  double rate;            /* items per wall second */
  double flops_s, bytes_s, frac_gemm, frac_copy;
} Derived;

static Derived derive(const BenchStage *st, const BenchCeiling *ceil)
{
  Derived d;
  d.gpu_med = bench_median(st->gpu_ms);
  d.wall_med = bench_median(st->wall_ms);
  d.gpu_min = bench_min(st->gpu_ms);
  d.wall_min = bench_min(st->wall_ms);
  d.time_s = (isnan(d.gpu_med) ? d.wall_med : d.gpu_med) / 1000.0;
  d.rate = st->items / (d.wall_med / 1000.0);
  d.flops_s = st->cost.flops / d.time_s;
  d.bytes_s = st->cost.bytes / d.time_s;
  d.frac_gemm = ceil && ceil->gemm_flops_s > 0 ? d.flops_s / ceil->gemm_flops_s : NAN;
  d.frac_copy = ceil && ceil->copy_bytes_s > 0 ? d.bytes_s / ceil->copy_bytes_s : NAN;
  return d;
}

static void fmt_ms(char *buf, size_t n, double ms)
{
  if (isnan(ms)) g_snprintf(buf, n, "-");
  else g_snprintf(buf, n, ms >= 100 ? "%.0f" : ms >= 1 ? "%.2f" : ms >= 0.001 || ms == 0 ? "%.3f" : "%.2g", ms);
}

static void fmt_pct(char *buf, size_t n, double f)
{
  if (isnan(f)) g_snprintf(buf, n, "-");
  else g_snprintf(buf, n, f >= 0.1 ? "%.0f%%" : "%.1f%%", 100 * f);
}

static void json_num(JsonBuilder *b, const char *k, double v)
{
  json_builder_set_member_name(b, k);
  if (isnan(v) || isinf(v)) json_builder_add_null_value(b);
  else if (v == floor(v) && fabs(v) < 9e15) json_builder_add_int_value(b, (gint64)v);  /* counts stay integers */
  else json_builder_add_double_value(b, v);
}

static void json_str(JsonBuilder *b, const char *k, const char *v)
{
  json_builder_set_member_name(b, k);
  if (v) json_builder_add_string_value(b, v);
  else json_builder_add_null_value(b);
}

static void json_arr(JsonBuilder *b, const char *k, const GArray *v)
{
  json_builder_set_member_name(b, k);
  json_builder_begin_array(b);
  for (guint i = 0; v && i < v->len; i++) {
    double x = g_array_index(v, double, i);
    if (isnan(x)) json_builder_add_null_value(b);
    else json_builder_add_double_value(b, x);
  }
  json_builder_end_array(b);
}

static void run_stage(BenchSession *sess, BenchStageId i, BenchStage *st, char **stage_err, int *rc)
{
  fprintf(stderr, "janusflow bench: %s\n", bench_stage_name(i));
  GError *e = NULL;
  if (!bench_session_run(sess, i, &st[i], &e)) {
    /* the other stages still run: one that does not fit is no reason to lose the rest */
    stage_err[i] = g_strdup(e->message);
    cli_print_error("bench: %s", e->message);
    *rc = MAX(*rc, cli_exit_code(e));
    g_error_free(e);
  }
}

int cli_bench_main(int argc, char **argv)
{
  Args a = { .steps = 30, .repeat = 3, .warmup = 1, .new_tokens = 32 };
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &a.model, "JanusFlow model folder", "DIR" },
    { "vae", 0, 0, G_OPTION_ARG_FILENAME, &a.vae, "SDXL-VAE folder (euler_step and vae_decode need it)", "DIR" },
    { "synthetic", 0, 0, G_OPTION_ARG_STRING, &a.synthetic,
      "Random-weight model: tiny (fixture shapes), small (fits 2 GiB), full (JanusFlow-1.3B; 4.3 GB on disk), "
      "written once under $XDG_CACHE_HOME/janusflow/synthetic", "NAME" },
    { "stages", 0, 0, G_OPTION_ARG_STRING, &a.stages,
      "Comma list: prefill, decode, siglip, euler_step, vae_decode, preview, first_preview; groups all (default), "
      "chat, euler, generate, vae", "LIST" },
    { "steps", 0, 0, G_OPTION_ARG_INT, &a.steps, "Steps of the whole-image estimate (default 30)", "N" },
    { "repeat", 0, 0, G_OPTION_ARG_INT, &a.repeat, "Timed runs per stage; the median is reported (default 3)", "N" },
    { "warmup", 0, 0, G_OPTION_ARG_INT, &a.warmup, "Untimed runs first (default 1; euler_step always has one)", "N" },
    { "max-new-tokens", 0, 0, G_OPTION_ARG_INT, &a.new_tokens, "Tokens per decode run (default 32)", "N" },
    { "cfg", 0, 0, G_OPTION_ARG_STRING, &a.cfg_s, "CFG weight of the Euler step (default 2)", "W" },
    { "prompt", 'p', 0, G_OPTION_ARG_FILENAME, &a.prompt, "Prompt of the chat and generation stages", "TEXT" },
    { "tokenizer", 0, 0, G_OPTION_ARG_FILENAME, &a.tokenizer,
      "DeepSeek-LLM tokenizer.json setting the prompt lengths of --synthetic (default: tests/data's copy)", "FILE" },
    { "no-ceiling", 0, 0, G_OPTION_ARG_NONE, &a.no_ceiling, "Skip the GEMM / copy ceiling measurement", NULL },
    { "json", 0, 0, G_OPTION_ARG_NONE, &a.json, "One JSON object on stdout (the table goes to stderr)", NULL },
    { "device", 'd', 0, G_OPTION_ARG_FILENAME, &a.device, "Vulkan device: index or name substring", "SEL" },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &a.weights, "Weight format on the device: bf16 (default) or q8_0 (the language model's Linear weights in 8 bits: less memory, small accuracy loss)", "FMT" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- time every stage on this device");
  g_option_context_add_main_entries(oc, entries, NULL);
  g_option_context_set_description(oc,
    "Each stage runs --warmup untimed times, then --repeat timed times; the median is reported. GPU time is\n"
    "the sum of the stage's submits measured by timestamp queries; wall time is the host clock around a\n"
    "run. GFLOP and GB are the work the stage needs at least, computed from the model's shapes (2 FLOPs\n"
    "per multiply-add of every Linear, convolution and attention product; weights read once, K/V read,\n"
    "embedding rows); 'counted' is what the engine's ops dispatched. FLOP/s and bytes/s use the GPU time;\n"
    "%GEMM and %copy compare them with this device's best GEMM and a large copy, measured first.\n"
    "first_preview is the wall time from calling the generator (prompt pass included) to the first\n"
    "step's preview in host memory, with the pipelines built; it runs before everything else so that\n"
    "its first run is also reported cold (pipelines built from the on-disk pipeline cache, if any:\n"
    "JANUSFLOW_PIPELINE_CACHE=off for a cold start without it).\n"
    "JANUSFLOW_PROFILE=1 adds a timestamp after every dispatch and prints the GPU time per shader\n"
    "(all runs and warm-ups together) to stderr at the end: which kernel to look at next.");
  GError *error = NULL;
  int rc = 0;
  gboolean want[BENCH_N_STAGES];
  VkrtContext *ctx = NULL;
  JfModel *m = NULL;
  BenchSession *sess = NULL;
  BenchPrompts pr = { 0 };
  BenchStage st[BENCH_N_STAGES];
  char *stage_err[BENCH_N_STAGES] = { 0 };
  char *model_dir = NULL, *vae_dir = NULL, *ref_tok = NULL, *source = NULL;
  memset(st, 0, sizeof st);
  float cfg = 2.0f;

  if (!g_option_context_parse(oc, &argc, &argv, &error))
    goto fail;
  if (argc > 1) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "unexpected argument '%s'", argv[1]);
    goto fail;
  }
  if (!cli_check_utf8("--prompt", a.prompt, &error) || !parse_stages(a.stages, want, &error))
    goto fail;
  if (!a.model == !a.synthetic) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "give --model DIR [--vae DIR] or --synthetic tiny|small|full");
    goto fail;
  }
  double mp = 0, vp = 0;
  if (a.synthetic && !bench_synth_preset(a.synthetic, &mp, &vp)) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--synthetic '%s': use tiny, small or full",
                a.synthetic);
    goto fail;
  }
  if (a.synthetic && a.vae) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--synthetic writes its own VAE; drop --vae");
    goto fail;
  }
  if (a.repeat < 1 || a.repeat > 1000 || a.warmup < 0 || a.warmup > 1000 || a.steps < 1 || a.steps > 1000 ||
      a.new_tokens < 1 || a.new_tokens > 4096) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "--repeat 1..1000, --warmup 0..1000, --steps 1..1000, --max-new-tokens 1..4096");
    goto fail;
  }
  if (a.cfg_s) {
    char *end = NULL;
    double w = g_ascii_strtod(a.cfg_s, &end);
    if (!end || *end || end == a.cfg_s || !isfinite(w) || w < 0 || w > 100) {
      g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--cfg '%s': not a number in 0..100", a.cfg_s);
      goto fail;
    }
    cfg = (float)w;
  }
  JfLoadOptions lo = { 0 };
  if (a.weights && !llm_weight_format_parse(a.weights, &lo.weights, &error))
    goto fail;
  if (!a.prompt)
    a.prompt = g_strdup(DEFAULT_PROMPT);
  if (!a.vae && a.model && (want[BENCH_EULER_STEP] || want[BENCH_VAE_DECODE] || want[BENCH_FIRST_PREVIEW])) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "euler_step, vae_decode and first_preview need --vae DIR (or choose --stages)");
    goto fail;
  }

  if (!(ctx = cli_open_device(a.device, &error)))
    goto fail;
  const VkrtDeviceInfo *di = vkrt_context_info(ctx);

  if (a.synthetic) {
    char *what = g_strdup_printf("the synthetic '%s' model", a.synthetic);
    gboolean fits = check_fits(di, what, (mp + vp) * 2, &error);
    g_free(what);
    if (!fits) {
      g_prefix_error(&error, "nothing was written: ");
      goto fail;
    }
    if (!bench_synth_ensure(a.synthetic, &model_dir, &vae_dir, &error))
      goto fail;
    source = g_strdup_printf("synthetic %s (random weights, seed 0)", a.synthetic);
    if (!(ref_tok = find_ref_tokenizer(&a)))
      fprintf(stderr, "janusflow bench: warning: no DeepSeek-LLM tokenizer.json found (--tokenizer FILE); prompt "
              "lengths come from the synthetic model's byte-level tokenizer and differ from the reference bench's\n");
  } else {
    model_dir = g_strdup(a.model);
    vae_dir = g_strdup(a.vae);
    source = g_strdup_printf("model folder %s", a.model);
    if (a.tokenizer)
      ref_tok = find_ref_tokenizer(&a);
    /* model_load itself refuses, with sizes, a folder too large for the device */
  }

  unsigned what = 0;
  for (int i = 0; i < BENCH_N_STAGES; i++)
    if (want[i]) what |= bench_stage_needs(i);
  double t_load = g_get_monotonic_time() / 1e6;
  if (!(m = model_load_opts(ctx, model_dir, vae_dir, what, &lo, on_progress, NULL, &error)))
    goto fail;
  t_load = g_get_monotonic_time() / 1e6 - t_load;
  if (!bench_prompts_make(m, a.prompt, ref_tok, &pr, &error))
    goto fail;
  if (pr.gen_prefix_got != pr.gen_prefix)
    fprintf(stderr, "janusflow bench: warning: the generation prefix is %u tokens here, not %u as with the "
            "DeepSeek-LLM tokenizer\n", pr.gen_prefix_got, pr.gen_prefix);

  BenchOptions bo = { .warmup = a.warmup, .repeat = a.repeat, .decode_tokens = a.new_tokens, .cfg = cfg,
                      .steps = a.steps };
  sess = bench_session_new(m, &pr, &bo);
  /* first: its cold run must meet no pipeline that the ceiling or another stage built */
  if (want[BENCH_FIRST_PREVIEW])
    run_stage(sess, BENCH_FIRST_PREVIEW, st, stage_err, &rc);

  BenchCeiling ceil = { 0 };
  if (!a.no_ceiling) {
    fprintf(stderr, "janusflow bench: measuring the device ceiling (GEMM, copy)\n");
    if (!bench_measure_ceiling(ctx, &ceil, &error)) {
      g_prefix_error(&error, "ceiling: ");
      goto fail;
    }
  }

  for (int i = 0; i < BENCH_N_STAGES; i++)
    if (want[i] && i != BENCH_FIRST_PREVIEW)
      run_stage(sess, i, st, stage_err, &rc);

  /* --- report --------------------------------------------------------------------------------- */
  int c_lat, h_lat, w_lat;
  gen_latent_size(m, &c_lat, &h_lat, &w_lat);
  GDateTime *now = g_date_time_new_now_local();
  char *date = g_date_time_format(now, "%Y-%m-%d %H:%M:%S %z");
  g_date_time_unref(now);
  FILE *out = a.json ? stderr : stdout;
  uint32_t n_img = pr.image_tokens, n_gen = (uint32_t)m->cfg->proc.num_image_tokens;
  fprintf(out, "janusflow %s bench, %s\n", JF_VERSION, date);
  fprintf(out, "device:  %s (%s), driver %s, %.2f GiB device-local, timestamps %s\n", di->name,
          vkrt_device_type_name(di->type), di->driver, (double)di->device_local_bytes / (1024.0 * 1024.0 * 1024.0),
          di->has_timestamps ? "yes" : "no (GPU columns empty, FLOP/s from wall time)");
  const char *kv_name = llm_kv_format_name(llm_kv_format_for(di->type, (uint32_t)m->cfg->llm.head_dim));
  fprintf(out, "model:   %s; %.3f GB of weights on the device (LLM %s, K/V cache %s); loaded in %.1f s\n", source,
          loaded_weight_bytes(m) / 1e9, m->llm ? llm_weight_format_name(llm_weight_format(m->llm)) : "not loaded",
          kv_name, t_load);
  fprintf(out, "shapes:  chat prompt %u tokens (%u image), decode %d tokens, generation prefix P = %u + %u rows per "
          "CFG row (x2), latent %dx%dx%d\n", pr.chat_ids->len, n_img, a.new_tokens, pr.gen_prefix_got, n_gen + 1,
          c_lat, h_lat, w_lat);
  fprintf(out, "lengths: %s\n", pr.tokenizer);
  if (!a.no_ceiling)
    fprintf(out, "ceiling: GEMM %.1f GFLOP/s (best of 3 shapes: %ux%ux%u), copy %.1f GB/s (%.0f MiB, read + write)%s\n",
            ceil.gemm_flops_s / 1e9, ceil.gemm_m, ceil.gemm_n, ceil.gemm_k, ceil.copy_bytes_s / 1e9,
            ceil.copy_size / (1024.0 * 1024.0), ceil.gpu_timed ? "" : " [wall clock]");
  fprintf(out, "runs:    %d warm-up + %d timed per stage, medians; FLOP/s and GB/s from GPU time, rates from wall time\n\n",
          a.warmup, a.repeat);
  fprintf(out, "%-11s %9s %9s %14s %9s %9s %8s %9s %8s %6s %6s %7s\n", "stage", "gpu ms", "wall ms", "rate", "GFLOP",
          "counted", "GB min", "GFLOP/s", "GB/s", "%GEMM", "%copy", "submits");
  for (int i = 0; i < BENCH_N_STAGES; i++) {
    if (!want[i])
      continue;
    if (!st[i].ran) {
      fprintf(out, "%-11s failed: %s\n", bench_stage_name(i), stage_err[i] ? stage_err[i] : "?");
      continue;
    }
    Derived d = derive(&st[i], a.no_ceiling ? NULL : &ceil);
    char g[32], w[32], r[48], pg[16], pc[16];
    fmt_ms(g, sizeof g, d.gpu_med);
    fmt_ms(w, sizeof w, d.wall_med);
    if (d.rate >= 1) g_snprintf(r, sizeof r, "%.1f %s/s", d.rate, st[i].item_unit);
    else g_snprintf(r, sizeof r, "%.2f s/%s", 1 / d.rate, st[i].item_unit);
    fmt_pct(pg, sizeof pg, d.frac_gemm);
    fmt_pct(pc, sizeof pc, d.frac_copy);
    fprintf(out, "%-11s %9s %9s %14s %9.4g %9.4g %8.3g %9.3g %8.3g %6s %6s %7.0f\n", bench_stage_name(i), g, w, r,
            st[i].cost.flops / 1e9, st[i].flops_counted / 1e9, st[i].cost.bytes / 1e9, d.flops_s / 1e9, d.bytes_s / 1e9,
            pg, pc, st[i].submits);
  }
  const char *cache_file = vkrt_context_pipeline_cache_file(ctx);
  const BenchStage *fp = &st[BENCH_FIRST_PREVIEW];
  if (fp->ran)
    fprintf(out, "\nfirst_preview: %.1f ms with the pipelines built; cold (first run in this process) %.1f ms, "
            "%.0f pipelines built in %.1f ms; pipeline cache %s (%" G_GUINT64_FORMAT " bytes read at start)\n",
            bench_median(fp->wall_ms), fp->cold_wall_ms, fp->cold_pipelines, fp->cold_pipeline_ms,
            cache_file ? cache_file : "off", vkrt_context_pipeline_cache_loaded(ctx));
  double est_gpu = NAN, est_wall = NAN;
  if (st[BENCH_EULER_STEP].ran && st[BENCH_VAE_DECODE].ran) {
    Derived e = derive(&st[BENCH_EULER_STEP], NULL), v = derive(&st[BENCH_VAE_DECODE], NULL);
    est_gpu = (a.steps * e.gpu_med + v.gpu_med) / 1000.0;
    est_wall = (a.steps * e.wall_med + v.wall_med) / 1000.0;
    fprintf(out, "\nestimate: one %ux%u image = %d x euler_step + vae_decode = %.2f s GPU, %.2f s wall (prompt pass "
            "not included)\n", vae_out_w(m->vae), vae_out_h(m->vae), a.steps, est_gpu, est_wall);
  }

  if (a.json) {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_str(b, "tool", "janusflow bench");
    json_str(b, "version", JF_VERSION);
    json_str(b, "date", date);
    json_builder_set_member_name(b, "device");
    json_builder_begin_object(b);
    json_str(b, "name", di->name);
    json_str(b, "type", vkrt_device_type_name(di->type));
    json_str(b, "driver", di->driver);
    json_num(b, "device_local_bytes", (double)di->device_local_bytes);
    json_builder_set_member_name(b, "timestamps"); json_builder_add_boolean_value(b, di->has_timestamps);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "model");
    json_builder_begin_object(b);
    json_str(b, "source", source);
    json_str(b, "dir", model_dir);
    json_str(b, "vae_dir", vae_dir);
    json_str(b, "synthetic", a.synthetic);
    json_num(b, "weight_bytes_on_device", loaded_weight_bytes(m));
    json_str(b, "llm_weights", m->llm ? llm_weight_format_name(llm_weight_format(m->llm)) : NULL);
    json_str(b, "kv_cache", kv_name);
    json_num(b, "load_s", t_load);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "shapes");
    json_builder_begin_object(b);
    json_num(b, "chat_tokens", pr.chat_ids->len);
    json_num(b, "chat_image_tokens", n_img);
    json_num(b, "decode_tokens", a.new_tokens);
    json_num(b, "gen_prefix", pr.gen_prefix_got);
    json_num(b, "gen_prefix_reference_tokenizer", pr.gen_prefix);
    json_num(b, "gen_image_tokens", n_gen);
    json_num(b, "latent_channels", c_lat);
    json_num(b, "latent_h", h_lat);
    json_num(b, "latent_w", w_lat);
    json_str(b, "lengths_from", pr.tokenizer);
    json_builder_end_object(b);
    json_builder_set_member_name(b, "ceiling");
    if (a.no_ceiling) {
      json_builder_add_null_value(b);
    } else {
      json_builder_begin_object(b);
      json_num(b, "gemm_flops_per_s", ceil.gemm_flops_s);
      char shape[64];
      g_snprintf(shape, sizeof shape, "%ux%ux%u", ceil.gemm_m, ceil.gemm_n, ceil.gemm_k);
      json_str(b, "gemm_shape_mnk", shape);
      json_num(b, "copy_bytes_per_s", ceil.copy_bytes_s);
      json_num(b, "copy_buffer_bytes", (double)ceil.copy_size);
      json_builder_set_member_name(b, "gpu_timed"); json_builder_add_boolean_value(b, ceil.gpu_timed);
      json_builder_end_object(b);
    }
    json_num(b, "warmup", a.warmup);
    json_num(b, "repeat", a.repeat);
    json_builder_set_member_name(b, "stages");
    json_builder_begin_object(b);
    for (int i = 0; i < BENCH_N_STAGES; i++) {
      if (!want[i])
        continue;
      json_builder_set_member_name(b, bench_stage_name(i));
      json_builder_begin_object(b);
      if (!st[i].ran) {
        json_str(b, "error", stage_err[i] ? stage_err[i] : "?");
        json_builder_end_object(b);
        continue;
      }
      Derived d = derive(&st[i], a.no_ceiling ? NULL : &ceil);
      json_num(b, "gpu_ms_median", d.gpu_med);
      json_num(b, "wall_ms_median", d.wall_med);
      json_num(b, "gpu_ms_min", d.gpu_min);
      json_num(b, "wall_ms_min", d.wall_min);
      json_arr(b, "gpu_ms", st[i].gpu_ms);
      json_arr(b, "wall_ms", st[i].wall_ms);
      json_num(b, "items", st[i].items);
      json_str(b, "item", st[i].item_unit);
      json_num(b, "items_per_s", d.rate);
      json_num(b, "flops", st[i].cost.flops);
      json_num(b, "flops_counted", st[i].flops_counted);
      json_num(b, "bytes_min", st[i].cost.bytes);
      json_num(b, "flops_per_s", d.flops_s);
      json_num(b, "bytes_per_s", d.bytes_s);
      json_num(b, "fraction_of_gemm_ceiling", d.frac_gemm);
      json_num(b, "fraction_of_copy_ceiling", d.frac_copy);
      json_num(b, "submits", st[i].submits);
      if (i == BENCH_FIRST_PREVIEW) {
        json_num(b, "cold_wall_ms", st[i].cold_wall_ms);
        json_num(b, "cold_pipelines_built", st[i].cold_pipelines);
        json_num(b, "cold_pipeline_ms", st[i].cold_pipeline_ms);
        json_str(b, "pipeline_cache_file", cache_file);
        json_num(b, "pipeline_cache_loaded_bytes", (double)vkrt_context_pipeline_cache_loaded(ctx));
      }
      json_builder_end_object(b);
    }
    json_builder_end_object(b);
    json_builder_set_member_name(b, "image_estimate");
    json_builder_begin_object(b);
    json_num(b, "steps", a.steps);
    json_num(b, "gpu_s", est_gpu);
    json_num(b, "wall_s", est_wall);
    json_builder_end_object(b);
    json_builder_end_object(b);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_pretty(gen, TRUE);
    JsonNode *root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
    g_free(text);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(b);
  }
  g_free(date);
  goto done;

fail:
  cli_print_error("bench: %s", error->message);
  rc = cli_exit_code(error);
  g_clear_error(&error);
done:
  for (int i = 0; i < BENCH_N_STAGES; i++) {
    bench_stage_clear(&st[i]);
    g_free(stage_err[i]);
  }
  bench_session_free(sess);
  bench_prompts_clear(&pr);
  model_free(m);
  if (ctx) vkrt_context_free(ctx);
  g_option_context_free(oc);
  g_free(model_dir);
  g_free(vae_dir);
  g_free(ref_tok);
  g_free(source);
  args_free(&a);
  return rc;
}
