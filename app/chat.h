/* chat: a multi-turn conversation with the model (text and images). Keeps the KV cache of
 * earlier turns so a new turn only prefills its own tokens. Synchronous: the GUI runs it on a
 * worker thread; cancellation through a GCancellable is honoured between GPU submits. */
#pragma once
#include <gio/gio.h>
#include "model.h"
#include "sampler.h"
#include "image.h"

G_BEGIN_DECLS

typedef struct JfChat JfChat;

/* Tokens of conversation a chat holds unless the caller asks for another context. */
#define CHAT_DEFAULT_CONTEXT 4096u

/* system: NULL = the processor's default system prompt, "" = none. context: KV capacity in
 * tokens, 0 = CHAT_DEFAULT_CONTEXT (max_position_embeddings is not a bound). */
JfChat *chat_new(JfModel *m, const char *system, uint32_t context, GError **error);
void chat_free(JfChat *c);
/* Forgets the conversation (the KV cache is reused from the start). */
void chat_reset(JfChat *c);
/* Tokens in the conversation so far / capacity. */
uint32_t chat_n_tokens(const JfChat *c);
uint32_t chat_capacity(const JfChat *c);
/* Writes prompt_ids.npy, image_embeds.npy (if images), logits_0.npy and output_ids.npy of the
 * next turn into dir (the fixture's --dump format). NULL turns it off. */
void chat_set_dump_dir(JfChat *c, const char *dir);

/* Called with each new piece of answer text (valid UTF-8, possibly empty); return FALSE to stop. */
typedef gboolean (*JfTextFunc)(const char *piece, void *user);

/* Sends one user turn (question + images, which are shown to the model in order before the
 * question) and generates the answer. On success *answer (if not NULL) gets the whole decoded
 * answer. Errors: bad input (empty question, too many images for the context: the message says
 * how many fit), GPU errors, G_IO_ERROR_CANCELLED. After an error the conversation is as it was
 * before the call. */
gboolean chat_send(JfChat *c, const char *question, const JfImage *const *images, int n_images,
                   const JfSampling *s, JfTextFunc on_text, void *user, GCancellable *cancel,
                   char **answer, GError **error);

/* Puts one past exchange back into the conversation without generating: the user turn exactly
 * as chat_send builds it (template, images encoded and spliced the same way), then the answer's
 * text encoded again (no BOS), then the state chat_send leaves after an answer that ended with
 * EOS (the EOS is fed with the next turn). Used to continue a saved conversation. The answer's
 * ids may differ from the ones originally sampled when its text has several tokenizations (and
 * special tokens the decoder dropped are gone), so the model's memory can differ slightly from
 * the original session's. Errors as chat_send's (G_IO_ERROR_NO_SPACE, with the counts, when the
 * exchange does not fit in what is left of the context; G_IO_ERROR_CANCELLED); after an error
 * the conversation is as it was before the call. */
gboolean chat_replay_turn(JfChat *c, const char *question, const JfImage *const *images, int n_images,
                          const char *answer, GCancellable *cancel, GError **error);
/* How much chat_n_tokens grows when chat_replay_turn replays this exchange as the first turn of
 * a conversation (first) or as a later one: the sum over a conversation's turns is its size, so
 * a caller can choose which past turns fit before replaying any. Touches no GPU state. Errors:
 * the bad-input ones of chat_replay_turn. */
gboolean chat_measure_turn(JfChat *c, const char *question, int n_images, const char *answer, gboolean first,
                           uint32_t *n_tokens, GError **error);

G_END_DECLS
