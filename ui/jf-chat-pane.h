/* JfChatPane: the conversation. Messages stream in from the engine; images come in by drag and
 * drop (files or image data), paste, or the attach button. The conversation is saved after
 * every turn (jf-chat-store) and restored when the pane is set up.
 *
 * Restored turns are shown but are not in the model's KV cache: chat.h has no way to prefill
 * past answers, so the model starts a fresh context and the pane says so with a divider. */
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
/* Restoring finished (whether or not there was anything to restore). */
gboolean jf_chat_pane_is_restored(JfChatPane *p);
/* Waits (running the main loop) until pending writes of chat.json are done. */
void jf_chat_pane_flush(JfChatPane *p);
gboolean jf_chat_pane_is_saving(JfChatPane *p);

G_END_DECLS
