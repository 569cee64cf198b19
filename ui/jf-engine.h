/* jf-engine: the one worker thread that owns the Vulkan context, the model, the chat and the
 * generator. The GTK main thread never runs model work: it queues jobs here, and results,
 * streamed text, progress and previews come back as signals emitted on the main context.
 *
 * Jobs run one at a time in the order they were queued. Each has an id and its own
 * GCancellable; jf_engine_cancel() stops a running job between GPU submits and drops a queued
 * one. jf_engine_shutdown() (also done on dispose) cancels everything and joins the thread;
 * signals are no longer emitted after it. */
#pragma once
#include <gtk/gtk.h>
#include "generate.h"
#include "sampler.h"

G_BEGIN_DECLS

#define JF_TYPE_ENGINE (jf_engine_get_type())
G_DECLARE_FINAL_TYPE(JfEngine, jf_engine, JF, ENGINE, GObject)

/* The payload of "gen-step" (valid during the emission). */
typedef struct {
  guint job;
  int step, steps;           /* 0-based index of the step just done, total as planned now */
  float t, cfg;              /* what the engine used for this step */
  double gpu_ms, wall_ms;
  GdkTexture *preview;       /* x0 estimate of image 0, or NULL */
} JfEngineStep;

JfEngine *jf_engine_new(void);
void jf_engine_shutdown(JfEngine *e);
gboolean jf_engine_is_shut_down(JfEngine *e);

/* Loads (or re-loads) a model. vae_dir may be NULL: then only chat works. device: selector as
 * in vkrt (NULL = automatic). weights: how the language model's weights live on the device
 * (model_load_opts). Signals: "load-progress" (fraction, label), "load-finished" (GError* or
 * NULL; a model that does not fit the device gives VKRT_ERROR_OOM). */
guint jf_engine_load(JfEngine *e, const char *model_dir, const char *vae_dir, const char *device,
                     JfWeightFormat weights);
gboolean jf_engine_is_loaded(JfEngine *e);
gboolean jf_engine_is_loading(JfEngine *e);
gboolean jf_engine_can_generate(JfEngine *e);
gboolean jf_engine_can_see(JfEngine *e);
const char *jf_engine_get_device_name(JfEngine *e);
/* Device memory allocated by the engine, as of the last report from the worker. */
guint64 jf_engine_get_memory(JfEngine *e);
/* The weight format of the model loaded last (or, after a failed load, the one it tried). */
JfWeightFormat jf_engine_get_weights(JfEngine *e);
/* Device bytes 8-bit language model weights save over bf16 for the model folder loaded or tried
 * last (from its tensor table, as model_load's fit check counts them); 0 if unknown. */
guint64 jf_engine_get_q8_saving(JfEngine *e);
/* Whether the model folder loaded or tried last would fit the device's memory with 8-bit language
 * model weights (the same count as model_load's fit check); FALSE if unknown. */
gboolean jf_engine_get_q8_fits(JfEngine *e);

/* Sends one chat turn. images: GdkTexture elements (referenced, not copied). Signals:
 * "chat-text" (job, piece) then "chat-finished" (job, answer or NULL, GError* or NULL).
 * jf_engine_cancel() during the answer ends it early and successfully (the partial answer stays
 * in the conversation); before the answer starts it gives G_IO_ERROR_CANCELLED. */
guint jf_engine_chat_send(JfEngine *e, const char *text, GPtrArray *images, const JfSampling *s);
/* Forgets the conversation (the KV cache). */
guint jf_engine_chat_reset(JfEngine *e);
/* Puts a saved conversation back into the model's memory, so the next turn continues it: resets
 * the conversation, then replays (chat_replay_turn) each user entry that an assistant entry
 * follows, in order. entries: JfChatEntry* (jf-chat-store.h), copied. Left out: a trailing
 * user entry without an answer, and a turn that failed before any answer (empty answer marked
 * stopped) or that chat_send would have refused: the model never saw those. Images are the
 * entries' textures (one that could not be loaded is left out, as it is on screen); none when
 * the model has no vision encoder. If the history does not fit in the context with room left
 * for a next turn (a quarter of the context), the oldest pairs are dropped.
 * Signals: "chat-restore-progress" (job, pairs done, pairs to replay) after each pair, then
 * "chat-restore-finished" (job, GArray of gboolean or NULL, pairs dropped, GError* or NULL):
 * the array (valid during the emission) says for each given entry whether it is now in the
 * model's memory. After an error (G_IO_ERROR_CANCELLED included) the conversation is empty. */
guint jf_engine_chat_restore(JfEngine *e, GPtrArray *entries);
/* Tokens in the model's conversation and its capacity (0 before the first chat job), as of the
 * last report from the worker. */
guint jf_engine_get_chat_tokens(JfEngine *e);
guint jf_engine_get_chat_capacity(JfEngine *e);

/* Starts a generation (p->prompt is copied; p->noise is not supported here). Signals:
 * "gen-step" (JfEngineStep*) for every Euler step, then "gen-finished" (job, GPtrArray of
 * GdkTexture or NULL, GError* or NULL). */
guint jf_engine_generate(JfEngine *e, const JfGenParams *p);
/* Steer the queued or running generation; takes effect at its next step. */
void jf_engine_set_cfg(JfEngine *e, float cfg);
void jf_engine_set_steps(JfEngine *e, int steps);

void jf_engine_cancel(JfEngine *e, guint job);
/* Jobs queued or running. */
guint jf_engine_n_pending(JfEngine *e);

/* Tests: the worker waits after each step (and each piece of chat text) until the main thread
 * has handled "gen-step" ("chat-text"), so a change made in the handler is guaranteed to apply
 * to the very next step (a Stop pressed in the handler ends the answer right there). */
void jf_engine_set_lockstep(JfEngine *e, gboolean lockstep);

G_END_DECLS
