/* prompt: the sft conversation templates of JanusFlow's processor ("deepseek" and
 * "deepseek_old", which give the same text since the role names come from the messages). */
#pragma once
#include <glib.h>

G_BEGIN_DECLS

/* The processor's built-in system prompt for understanding. */
extern const char *const PROMPT_DEFAULT_SYSTEM;

/* Checks that sft_format is one we implement. */
gboolean prompt_check_format(const char *sft_format, GError **error);

/* First turn: system + "\n\n" + "User: " + (n_images x "<image_tag>\n") + question + "\n\n" +
 * "Assistant:". An empty system prompt leaves the system part out entirely (generation). */
char *prompt_first_turn(const char *system, const char *image_tag, int n_images, const char *question);
/* A later turn, appended right after the previous answer's EOS separator:
 * "User: " + images + question + "\n\nAssistant:". */
char *prompt_next_turn(const char *image_tag, int n_images, const char *question);
/* Generation: "User: {prompt}\n\nAssistant:" + tag. */
char *prompt_generation(const char *prompt, const char *tag);

G_END_DECLS
