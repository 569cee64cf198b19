/* JfChatPane: the conversation. Messages stream in from the engine; images come in by drag and
 * drop (files or image data), paste, or the attach button. The conversation is saved after
 * every turn (jf-chat-store) and restored when the pane is set up.
 *
 * The model's memory (its KV cache) is empty after a start or a model (re)load, so the pane has
 * the engine read the conversation on screen back into it (jf_engine_chat_restore) and the next
 * question continues it. Older turns that no longer fit in the context are marked with a
 * divider; if reading back fails, a divider says the model starts afresh there. */
#pragma once
#include <gtk/gtk.h>
#include "jf-engine.h"
#include "jf-settings.h"
#include "jf-chat-message.h"

G_BEGIN_DECLS

#define JF_TYPE_CHAT_PANE (jf_chat_pane_get_type())
G_DECLARE_FINAL_TYPE(JfChatPane, jf_chat_pane, JF, CHAT_PANE, GtkBox)

/* engine: referenced; settings: borrowed, must outlive the pane (sampling values are read from
 * and written to it); store_dir: where chat.json lives (NULL = jf_chat_store_dir()). Starts
 * restoring the saved conversation. */
void jf_chat_pane_setup(JfChatPane *p, JfEngine *engine, JfSettings *settings, const char *store_dir);

/* Sends what is in the composer. FALSE if there was nothing to send or a turn is running. */
gboolean jf_chat_pane_send(JfChatPane *p);
void jf_chat_pane_stop(JfChatPane *p);
/* Clears the conversation, the saved copy and the model's KV cache. */
void jf_chat_pane_new_chat(JfChatPane *p);
gboolean jf_chat_pane_is_busy(JfChatPane *p);

void jf_chat_pane_attach_texture(JfChatPane *p, GdkTexture *texture);
/* Loads the files on a thread and attaches those that are images. */
void jf_chat_pane_attach_files(JfChatPane *p, GSList *files);
void jf_chat_pane_open_attach_dialog(JfChatPane *p);
guint jf_chat_pane_get_n_attachments(JfChatPane *p);
void jf_chat_pane_clear_attachments(JfChatPane *p);
void jf_chat_pane_focus_input(JfChatPane *p);

guint jf_chat_pane_get_n_messages(JfChatPane *p);
JfChatMessage *jf_chat_pane_get_message(JfChatPane *p, guint index);
/* Restoring (reading chat.json) finished (whether or not there was anything to restore). */
gboolean jf_chat_pane_is_restored(JfChatPane *p);
/* The engine is reading the conversation back into the model (messages sent now wait for it);
 * the "replaying" property. */
gboolean jf_chat_pane_is_replaying(JfChatPane *p);
/* Waits (running the main loop) until pending writes of chat.json are done. */
void jf_chat_pane_flush(JfChatPane *p);
gboolean jf_chat_pane_is_saving(JfChatPane *p);

G_END_DECLS
