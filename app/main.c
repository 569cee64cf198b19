/* janusflow: with no subcommand (or only --model/--vae options) it opens the window; chat,
 * generate, bench, info and tokenize run headless. */
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <stdarg.h>
#include "jf-config.h"
#include "cli.h"
#ifdef JF_HAVE_GUI
#include "jf-app.h"
#endif

void cli_print_error(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  char *msg = g_strdup_vprintf(fmt, ap);
  va_end(ap);
  /* one line: newlines inside a message would break scripts that read the first line */
  for (char *p = msg; *p; p++)
    if (*p == '\n') *p = ' ';
  fprintf(stderr, "janusflow: %s\n", msg);
  g_free(msg);
}

static void print_usage(FILE *f)
{
  fprintf(f,
    "Usage: janusflow [--model DIR] [--vae DIR]     open the window\n"
    "       janusflow COMMAND [OPTIONS]\n"
    "\n"
    "Commands:\n"
    "  chat       chat with the model (text and images), streamed to stdout\n"
    "  generate   make an image from a prompt (rectified flow + SDXL-VAE)\n"
    "  bench      time every stage on this device\n"
    "  info       list Vulkan devices, the chosen one and the features used\n"
    "  tokenize   print the token ids of a text\n"
    "\n"
    "Run 'janusflow COMMAND --help' for the options of a command.\n"
    "Environment: JANUSFLOW_DEVICE (index or name substring), JANUSFLOW_VALIDATE=1.\n");
}

int main(int argc, char **argv)
{
  static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
    { "info", cli_info_main },
    { "tokenize", cli_tokenize_main },
    { "chat", cli_chat_main },
    { "generate", cli_generate_main },
    { "bench", cli_bench_main },
  };
  if (argc >= 2) {
    for (size_t i = 0; i < G_N_ELEMENTS(cmds); i++)
      if (strcmp(argv[1], cmds[i].name) == 0)
        return cmds[i].fn(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
      print_usage(stdout);
      return 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
      printf("janusflow %s\n", JF_VERSION);
      return 0;
    }
    if (argv[1][0] != '-') {
      cli_print_error("unknown command '%s' (see janusflow --help)", argv[1]);
      return 2;
    }
  }
#ifdef JF_HAVE_GUI
  return jf_app_run(argc, argv);
#else
  cli_print_error("this build has no window (GTK4 was not found at configure time); use a command");
  print_usage(stderr);
  return 2;
#endif
}
