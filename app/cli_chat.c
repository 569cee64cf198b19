/* janusflow chat: one prompt (--prompt), or an interactive conversation read from stdin. */
#include "cli.h"
#include "chat.h"
#include "image.h"
#include <stdio.h>
#include <string.h>
#include <signal.h>
#include <errno.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
  (void)sig;
  interrupted = 1;
}

static gboolean print_piece(const char *piece, void *user)
{
  (void)user;
  fputs(piece, stdout);
  fflush(stdout);
  return !interrupted;  /* Ctrl+C stops the answer, not the program */
}

static gboolean load_images(char **paths, GPtrArray *out, GError **error)
{
  for (int i = 0; paths && paths[i]; i++) {
    JfImage *img = image_load(paths[i], error);
    if (!img)
      return FALSE;
    if (img->animated)
      fprintf(stderr, "(%s is animated: the model sees its first frame)\n", paths[i]);
    g_ptr_array_add(out, img);
  }
  return TRUE;
}

static gboolean run_turn(JfChat *chat, const char *prompt, GPtrArray *imgs, const JfSampling *s, GError **error)
{
  interrupted = 0;
  gboolean ok = chat_send(chat, prompt, (const JfImage *const *)imgs->pdata, (int)imgs->len, s,
                          print_piece, NULL, NULL, NULL, error);
  fputc('\n', stdout);
  fflush(stdout);
  return ok;
}

int cli_chat_main(int argc, char **argv)
{
  char *model = NULL, *prompt = NULL, *system = NULL, *dump = NULL, *device = NULL, *weights = NULL;
  char **image_paths = NULL;
  JfSampling s = sampler_defaults();
  double temperature = s.temperature, top_p = s.top_p;
  int top_k = s.top_k, max_new = s.max_new_tokens, ctx_len = 0;
  gint64 seed = (gint64)s.seed;
  GOptionEntry entries[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, &model, "JanusFlow model folder (HuggingFace layout)", "DIR" },
    { "prompt", 'p', 0, G_OPTION_ARG_FILENAME, &prompt, "Ask this and exit (else read turns from stdin)", "TEXT" },
    { "image", 'i', 0, G_OPTION_ARG_FILENAME_ARRAY, &image_paths, "Image to show the model (repeatable)", "FILE" },
    { "max-new-tokens", 'n', 0, G_OPTION_ARG_INT, &max_new, "Longest answer in tokens (default 512)", "N" },
    { "temperature", 't', 0, G_OPTION_ARG_DOUBLE, &temperature, "Sampling temperature, 0 = greedy (default 0.1)", "T" },
    { "top-p", 0, 0, G_OPTION_ARG_DOUBLE, &top_p, "Nucleus sampling threshold (default 0.95)", "P" },
    { "top-k", 0, 0, G_OPTION_ARG_INT, &top_k, "Keep the K most likely tokens, 0 = off (default 50)", "K" },
    { "seed", 's', 0, G_OPTION_ARG_INT64, &seed, "Sampling seed (default 42)", "S" },
    { "system", 0, 0, G_OPTION_ARG_FILENAME, &system, "System prompt (default: the model's own)", "TEXT" },
    { "ctx", 0, 0, G_OPTION_ARG_INT, &ctx_len, "Context length in tokens (default 4096)", "N" },
    { "dump", 0, 0, G_OPTION_ARG_FILENAME, &dump, "Write prompt_ids/logits_0/output_ids(.npy) here", "DIR" },
    { "device", 'd', 0, G_OPTION_ARG_FILENAME, &device, "Vulkan device: index or name substring", "SEL" },
    { "weights", 0, 0, G_OPTION_ARG_STRING, &weights, "Weight format on the device: bf16 (default) or q8_0 (the language model's Linear weights in 8 bits: less memory, small accuracy loss)", "FMT" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- chat with JanusFlow about text and images");
  g_option_context_set_summary(oc,
    "Interactive use (no --prompt): type a message and press Enter. Commands: /image FILE attaches an\n"
    "image to the next message, /new starts a new conversation, /quit or end of input exits.\n"
    "Ctrl+C stops the answer being written.");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  int rc = 0;
  VkrtContext *vk = NULL;
  JfModel *m = NULL;
  JfChat *chat = NULL;
  GPtrArray *imgs = g_ptr_array_new_with_free_func((GDestroyNotify)image_free);

  if (!g_option_context_parse(oc, &argc, &argv, &error))
    goto fail;
  if (!cli_check_utf8("--prompt", prompt, &error) || !cli_check_utf8("--system", system, &error))
    goto fail;
  if (!model) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE, "--model DIR is required");
    goto fail;
  }
  if (max_new < 1 || temperature < 0 || !(temperature < 1e6) || !(top_p > 0 && top_p <= 1) || top_k < 0 || ctx_len < 0) {
    g_set_error(&error, G_OPTION_ERROR, G_OPTION_ERROR_BAD_VALUE,
                "invalid sampling option: need --max-new-tokens >= 1, --temperature >= 0, 0 < --top-p <= 1, --top-k >= 0");
    goto fail;
  }
  JfLoadOptions lo = { 0 };
  if (weights && !llm_weight_format_parse(weights, &lo.weights, &error))
    goto fail;
  s.temperature = (float)temperature;
  s.top_p = (float)top_p;
  s.top_k = top_k;
  s.max_new_tokens = max_new;
  s.seed = (uint64_t)seed;

  /* bad images are reported before the model is loaded: it is the cheaper mistake to find */
  if (!load_images(image_paths, imgs, &error))
    goto fail;
  if (!(vk = cli_open_device(device, &error)))
    goto fail;
  unsigned what = JF_LOAD_LLM | JF_LOAD_VISION;
  if (!(m = model_load_opts(vk, model, NULL, what, &lo, NULL, NULL, &error)))
    goto fail;
  if (ctx_len > llm_config(m->llm)->max_pos)
    fprintf(stderr, "note: --ctx %d is above the model's max_position_embeddings (%d): answers past that "
            "point are outside what it was trained on\n", ctx_len, llm_config(m->llm)->max_pos);
  if (!(chat = chat_new(m, system, (uint32_t)ctx_len, &error)))
    goto fail;
  if (dump)
    chat_set_dump_dir(chat, dump);

  struct sigaction sa = { .sa_handler = on_sigint };
  sigaction(SIGINT, &sa, NULL);

  if (prompt) {
    if (!run_turn(chat, prompt, imgs, &s, &error))
      goto fail;
  } else {
    gboolean tty = isatty(fileno(stdin));
    char line[65536];
    for (;;) {
      if (tty) {
        fputs("> ", stderr);
        fflush(stderr);
      }
      if (!fgets(line, sizeof line, stdin))
        break;
      /* a longer line would otherwise come back from fgets as several messages */
      if (!strchr(line, '\n') && !feof(stdin)) {
        int ch;
        while ((ch = fgetc(stdin)) != EOF && ch != '\n')
          ;
        cli_print_error("the message is longer than %zu bytes; it was not sent", sizeof line - 2);
        continue;
      }
      g_strchomp(line);
      if (strcmp(line, "/quit") == 0)
        break;
      if (strcmp(line, "/new") == 0) {
        chat_reset(chat);
        g_ptr_array_set_size(imgs, 0);
        fprintf(stderr, "(new conversation)\n");
        continue;
      }
      if (g_str_has_prefix(line, "/image ")) {
        JfImage *img = image_load(g_strstrip(line + 7), &error);
        if (!img) {
          cli_print_error("%s", error->message);
          g_clear_error(&error);
        } else {
          g_ptr_array_add(imgs, img);
          fprintf(stderr, "(image attached: %dx%d%s)\n", img->width, img->height,
                  img->animated ? ", animated: its first frame" : "");
        }
        continue;
      }
      if (!*line && imgs->len == 0)
        continue;
      if (!run_turn(chat, line, imgs, &s, &error)) {
        /* the session goes on: a bad turn leaves the conversation as it was */
        cli_print_error("%s", error->message);
        g_clear_error(&error);
      }
      g_ptr_array_set_size(imgs, 0);
      if (dump)
        chat_set_dump_dir(chat, NULL);  /* the dump describes the first turn */
    }
  }
  goto done;

fail:
  cli_print_error("%s", error->message);
  rc = cli_exit_code(error);
  g_clear_error(&error);
done:
  chat_free(chat);
  model_free(m);
  if (vk) vkrt_context_free(vk);
  g_ptr_array_unref(imgs);
  g_option_context_free(oc);
  g_free(model);
  g_free(prompt);
  g_free(system);
  g_free(dump);
  g_free(device);
  g_free(weights);
  g_strfreev(image_paths);
  return rc;
}
