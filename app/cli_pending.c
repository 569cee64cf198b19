/* Development placeholder: commands whose implementation has not landed yet. Removed as each
 * lands; never part of a release. */
#include "cli.h"

int cli_bench_main(int argc, char **argv)
{
  (void)argc; (void)argv;
  cli_print_error("bench: not implemented yet");
  return 1;
}

