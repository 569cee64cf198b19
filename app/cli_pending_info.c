/* Development placeholder until app/cli_info.c lands (see app/meson.build). */
#include "cli.h"

int cli_info_main(int argc, char **argv)
{
  (void)argc; (void)argv;
  cli_print_error("info: not implemented yet");
  return 1;
}
