#include <glib.h>
/* Subcommands of the janusflow executable. Each lives in app/cli_<name>.c, parses its own
 * options with GOptionContext and returns the process exit status: 0 success, 1 runtime failure
 * (GPU error, cancelled), 2 bad input or usage (the message names the file and the problem). */
#pragma once

int cli_info_main(int argc, char **argv);
int cli_tokenize_main(int argc, char **argv);
int cli_chat_main(int argc, char **argv);
int cli_generate_main(int argc, char **argv);
int cli_bench_main(int argc, char **argv);

/* Prints "janusflow: <message>" on stderr (one line). */
void cli_print_error(const char *fmt, ...) G_GNUC_PRINTF(1, 2);

#include "vkrt.h"
/* Exit status for an error: 2 for bad input (files, arguments, prompts), 1 for runtime failures
 * (GPU errors, cancellation). */
int cli_exit_code(const GError *error);
/* Creates the Vulkan context for a command (--device SEL, else JANUSFLOW_DEVICE, else the best). */
VkrtContext *cli_open_device(const char *selector, GError **error);
/* Text options are parsed as raw bytes (G_OPTION_ARG_FILENAME: no locale conversion, so UTF-8
 * prompts work under any locale) and checked here. NULL is fine. */
gboolean cli_check_utf8(const char *option, const char *value, GError **error);
