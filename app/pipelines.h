/* pipelines: where the on-disk pipeline cache lives, and the warm-up that builds the compute
 * pipelines a first generation and a first chat turn need before the user asks for either
 * (issue 7: the first live preview should follow Generate within 100 ms on a GPU; compiling
 * some 40 pipelines on the way would alone cost more than that on most drivers). */
#pragma once
#include <gio/gio.h>
#include "model.h"
#include "generate.h"
#include "chat.h"

G_BEGIN_DECLS

/* The folder for VkrtOptions.pipeline_cache_dir: $JANUSFLOW_PIPELINE_CACHE when set ("", "0" or
 * "off": no cache, NULL), else $XDG_CACHE_HOME/janusflow/pipelines (~/.cache/...). Caller frees. */
char *pipelines_cache_dir(void);

/* Records one generation of g's model (two Euler steps with the fast preview, the prompt pass and
 * the VAE decode) in the context's record-only mode: every pipeline a generation uses is built,
 * nothing runs on the GPU and g's results are left meaningless (the next gen_run starts afresh).
 * The cooperative-matrix self-check, which must really run, is settled first. Pipelines that
 * depend on the prompt's length (a GEMV for prompts of at most 4 tokens, plain attention below
 * 16) follow this prompt's: a typical one. */
gboolean pipelines_warm_generation(JfModel *m, JfGen *g, GCancellable *cancel, GError **error);

/* A real, short chat turn (a greeting, two new tokens, the sampler defaults) on a small chat of
 * its own, freed after: prefill, decode and sampling pipelines. Real because chat acts on what it
 * reads back; short enough to cost a few ms on a GPU. */
gboolean pipelines_warm_chat(JfModel *m, GCancellable *cancel, GError **error);

/* Records the SigLIP encoder and the image-start row (record-only, as the generation): what an
 * image in a chat adds. Does nothing without a vision encoder. */
gboolean pipelines_warm_vision(JfModel *m, GError **error);

/* All of the above that the loaded parts allow (generation needs g, NULL = skip it), then the
 * cache file is written so that the next start finds the pipelines even if this one crashes.
 * *created (optional): pipelines built by the warm-up. */
gboolean pipelines_warm_up(JfModel *m, JfGen *g, GCancellable *cancel, uint64_t *created, GError **error);

G_END_DECLS
