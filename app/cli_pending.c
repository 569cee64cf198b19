/* Development placeholder: commands whose implementation has not landed yet. Removed as each
 * lands; never part of a release. */
#include "cli.h"

int cli_generate_main(int argc, char **argv)
{
  (void)argc; (void)argv;
  cli_print_error("generate: not implemented yet");
  return 1;
}

int cli_bench_main(int argc, char **argv)
{
  (void)argc; (void)argv;
  cli_print_error("bench: not implemented yet");
  return 1;
}

int cli_chat_main(int argc, char **argv)
{
  (void)argc; (void)argv;
  cli_print_error("chat: not implemented yet");
  return 1;
}
