/* janusflow generate: prompt -> PNG, with progress per Euler step. */
#include "cli.h"
#include "generate.h"
#include "npy.h"
#include "jf-config.h"
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <math.h>
#include <unistd.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

static GCancellable *gen_cancel;
static volatile sig_atomic_t interrupted;

/* g_cancellable_cancel is not async-signal-safe: the handler sets a flag that the step callback
 * turns into a cancellation. */
static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

typedef struct {
  char *preview_dir;
  int quiet;
} StepCtx;

static void on_step(const JfGenStep *st, void *user)
{
  StepCtx *sc = user;
  if (interrupted)
    g_cancellable_cancel(gen_cancel);
  if (!sc->quiet) {
    double eta = st->wall_ms * (st->steps - st->step - 1) / 1000.0;
    fprintf(stderr, "step %d/%d  t=%.1f  cfg=%.2f  gpu %.1f ms  wall %.1f ms  eta %.1f s\n",
            st->step + 1, st->steps, st->t, st->cfg, st->gpu_ms, st->wall_ms, eta);
  }
  if (sc->preview_dir && st->preview) {
    char *name = g_strdup_printf("step_%03d.png", st->step);
    char *path = g_build_filename(sc->preview_dir, name, NULL);
    GError *err = NULL;
    if (!image_save_png(path, st->preview, TRUE, NULL, NULL, &err)) {
      cli_print_error("%s", err->message);
      g_clear_error(&err);
    }
    g_free(name);
    g_free(path);
  }
}

static char *out_name(const char *out, int i, int n)
{
  if (n == 1)
    return g_strdup(out);
  const char *dot = strrchr(out, '.');
  const char *slash = strrchr(out, '/');
  if (!dot || (slash && dot < slash))
    return g_strdup_printf("%s-%d", out, i);
  return g_strdup_printf("%.*s-%d%s", (int)(dot - out), out, i, dot);
}

int cli_generate_main(int argc, char **argv)
{
  char *model = NULL, *vae = NULL, *prompt = NULL, *out = NULL, *dump = NULL, *noise_path = NULL;
  char *preview_dir = NULL, *device = NULL, *cfg_s = NULL, *weights = NULL;
  JfGenParams p = gen_params_defaults();
  int steps = p.steps, batch = p.batch, quiet = 0, vae_every = 0;
  gint64 seed = -1;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "JanusFlow model folder", "DIR" },
    { "vae", 0, 0, G_OPTION_ARG_FILENAME, &vae, "SDXL-VAE folder (diffusers layout)", "DIR" },
    { "prompt", 'p', 0, G_OPTION_ARG_FILENAME, &prompt, "What to draw", "TEXT" },
    { "steps", 'n', 0, G_OPTION_ARG_INT, &steps, "Euler steps (default 30, 1..1000)", "N" },
    { "cfg", 'c', 0, G_OPTION_ARG_FILENAME, &cfg_s, "Classifier-free guidance weight (default 2)", "W" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Noise seed (default: random, printed)", "S" },
    { "noise", 0, 0, G_OPTION_ARG_FILENAME, &noise_path, "Initial latent(s) from a float32 .npy [B,4,h,w] or [4,h,w]; h x w sets the image size", "FILE" },
    { "batch", 'b', 0, G_OPTION_ARG_INT, &batch, "Images per run (default 1)", "N" },
    { "out", 'o', 0, G_OPTION_ARG_FILENAME, &out, "Output PNG (FILE-i.png for several)", "FILE" },
    { "dump", 0, 0, G_OPTION_ARG_FILENAME, &dump, "Write prompt_ids/velocity_0/latent/image(.npy) here", "DIR" },
    { "preview-dir", 0, 0, G_OPTION_ARG_FILENAME, &preview_dir, "Write the preview of every step here", "DIR" },
    { "vae-preview-every", 0, 0, G_OPTION_ARG_INT, &vae_every, "Previews through the full VAE every K steps", "K" },
    { "device", 'd', 0, G_OPTION_ARG_FILENAME, &device, "Vulkan device: index or name substring", "SEL" },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, "Weight format on the device: bf16 (default) or q8_0 (the language model's Linear weights in 8 bits: less memory, small accuracy loss)", "FMT" },
    { "quiet", 'q', 0, G_OPTION_ARG_NONE, &quiet, "No progress lines", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- make an image from a prompt");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  int rc = 0;
  VkrtContext *vk = NULL;
  JfModel *m = NULL;
  JfGen *gen = NULL;
  NpyArray *noise = NULL;
  JfImage **images = NULL;
  StepCtx sc = { 0 };

  if (!g_option_context_parse(oc, &argc, &argv, &error))
    goto fail;
  if (!cli_check_utf8("--prompt", prompt, &error))
    goto fail;
  if (!model || !vae || !prompt || !out) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--model, --vae, --prompt and --out are required");
    goto fail;
  }
  JfLoadOptions lo = { 0 };
  if (weights && !llm_weight_format_parse(weights, &lo.weights, &error))
    goto fail;
  if (cfg_s) {
    char *end = NULL;
    double w = g_ascii_strtod(cfg_s, &end);
    if (!end || *end || end == cfg_s || !isfinite(w) || w < 0 || w > 100) {
      g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--cfg '%s': not a number in 0..100", cfg_s);
      goto fail;
    }
    p.cfg = (float)w;
  }
  if (steps < 1 || steps > 1000) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--steps %d: must be 1..1000", steps);
    goto fail;
  }
  if (batch < 1 || batch > 16) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--batch %d: must be 1..16", batch);
    goto fail;
  }
  if (!*g_strstrip(prompt)) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--prompt is empty");
    goto fail;
  }
  p.prompt = prompt;
  p.steps = steps;
  p.batch = batch;
  if (seed < 0) {
    seed = (gint64)(g_random_int() & 0x7fffffff);
    if (!quiet)
      fprintf(stderr, "seed %" G_GINT64_FORMAT "\n", seed);
  }
  p.seed = (uint64_t)seed;
  if (noise_path) {
    if (!(noise = npy_read(noise_path, &error)))
      goto fail;
    if (noise->dtype != NPY_F32 || (noise->ndim != 3 && noise->ndim != 4) ||
        (noise->ndim == 4 && noise->shape[0] != batch)) {
      g_set_error(&error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                  "%s: expected float32 [4,h,w] or [%d,4,h,w] initial latents", noise_path, batch);
      goto fail;
    }
    if (noise->ndim == 3 && batch != 1) {
      g_set_error(&error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                  "%s: a [4,h,w] latent is for --batch 1", noise_path);
      goto fail;
    }
    p.noise = noise->data;
  }
  /* fail on an unwritable output before spending minutes on the image */
  {
    char *dir = g_path_get_dirname(out);
    gboolean ok = g_file_test(dir, G_FILE_TEST_IS_DIR) && access(dir, W_OK) == 0;
    if (!ok)
      g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_ACCES, "%s: the folder is missing or not writable", out);
    g_free(dir);
    /* saving writes a new file and renames it over the old one, which a device (/dev/full) or a
     * folder cannot take: say so now rather than after the run */
    for (int i = 0; ok && i < batch; i++) {
      char *name = out_name(out, i, batch);
      GStatBuf st;
      if (g_stat(name, &st) == 0 && !S_ISREG(st.st_mode)) {
        g_set_error(&error, G_FILE_ERROR, G_FILE_ERROR_INVAL, "%s: cannot save: not a regular file (%s)", name,
                    S_ISDIR(st.st_mode) ? "a folder" : "a device or other special file");
        ok = FALSE;
      }
      g_free(name);
    }
    if (!ok)
      goto fail;
  }
  if (preview_dir) {
    g_mkdir_with_parents(preview_dir, 0755);
    p.preview = vae_every > 0 ? JF_PREVIEW_VAE : JF_PREVIEW_FAST;
    p.preview_every = vae_every;
  }
  sc.preview_dir = preview_dir;
  sc.quiet = quiet;

  if (!(vk = cli_open_device(device, &error)))
    goto fail;
  if (!(m = model_load_opts(vk, model, vae, JF_LOAD_LLM | JF_LOAD_GENERATION, &lo, NULL, NULL, &error)))
    goto fail;
  if (noise) {
    int64_t h = noise->shape[noise->ndim - 2], w = noise->shape[noise->ndim - 1], ch = noise->shape[noise->ndim - 3];
    int lc, lh, lw;
    gen_latent_size(m, &lc, &lh, &lw);
    /* the noise sets the image size (as the reference takes it); only the channels are fixed */
    if (ch != lc || h < 1 || w < 1 || h > 4096 || w > 4096) {
      g_set_error(&error, JF_LOAD_ERROR, JF_LOAD_ERROR_MISMATCH,
                  "%s: latent shape [%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT ",%" G_GINT64_FORMAT
                  "] does not fit the model's latent [%d,h,w] (h, w 1..4096)", noise_path, ch, h, w, lc);
      goto fail;
    }
    if (!model_ensure_gen_latent(m, (int)h, (int)w, &error)) {
      g_prefix_error(&error, "%s: ", noise_path);
      goto fail;
    }
  }
  if (!(gen = gen_new(m, batch, &error)))
    goto fail;
  if (dump)
    gen_set_dump_dir(gen, dump);
  gen_cancel = g_cancellable_new();
  struct sigaction sa = { .sa_handler = on_sigint };
  sigaction(SIGINT, &sa, NULL);
  if (!gen_run(gen, &p, NULL, on_step, &sc, gen_cancel, &images, &error))
    goto fail;

  char cfg_txt[32], steps_txt[16], seed_txt[32];
  g_ascii_formatd(cfg_txt, sizeof cfg_txt, "%g", p.cfg);
  g_snprintf(steps_txt, sizeof steps_txt, "%d", p.steps);
  g_snprintf(seed_txt, sizeof seed_txt, "%" G_GINT64_FORMAT, seed);
  char *model_name = g_path_get_basename(model);
  /* index: the image's place in the batch, whose noise follows the others' from the same seed
   * (the GUI reads these keys back to repeat an image) */
  const char *keys[] = { "prompt", "seed", "steps", "cfg", "model", "software", "index", NULL };
  for (int i = 0; i < batch; i++) {
    char *name = out_name(out, i, batch);
    char *seed_i = noise ? g_strdup("noise-file") : g_strdup_printf("%s", seed_txt);
    char index_txt[16];
    g_snprintf(index_txt, sizeof index_txt, "%d", i);
    const char *vals[] = { prompt, seed_i, steps_txt, cfg_txt, model_name, "janusflow " JF_VERSION, index_txt, NULL };
    gboolean ok = image_save_png(name, images[i], TRUE, keys, vals, &error);
    if (ok && !quiet)
      fprintf(stderr, "wrote %s\n", name);
    g_free(seed_i);
    g_free(name);
    if (!ok) {
      g_free(model_name);
      goto fail;
    }
  }
  g_free(model_name);
  goto done;

fail:
  cli_print_error("%s", error->message);
  rc = cli_exit_code(error);
  g_clear_error(&error);
done:
  if (images) {
    for (int i = 0; i < batch; i++)
      image_free(images[i]);
    g_free(images);
  }
  gen_free(gen);
  model_free(m);
  if (vk) vkrt_context_free(vk);
  if (noise) npy_array_free(noise);
  g_clear_object(&gen_cancel);
  g_option_context_free(oc);
  g_free(model); g_free(vae); g_free(prompt); g_free(out); g_free(dump); g_free(noise_path);
  g_free(preview_dir); g_free(device); g_free(cfg_s); g_free(weights);
  return rc;
}
