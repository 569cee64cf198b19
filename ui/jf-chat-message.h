/* JfChatMessage: one turn of the conversation: who said it, the attached images as
 * thumbnails, and the text (which grows while the answer streams in). */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define JF_TYPE_CHAT_MESSAGE (jf_chat_message_get_type())
G_DECLARE_FINAL_TYPE(JfChatMessage, jf_chat_message, JF, CHAT_MESSAGE, GtkBox)

GtkWidget *jf_chat_message_new(gboolean from_user);
gboolean jf_chat_message_is_from_user(JfChatMessage *m);
void jf_chat_message_set_text(JfChatMessage *m, const char *text);
void jf_chat_message_append_text(JfChatMessage *m, const char *piece);
const char *jf_chat_message_get_text(JfChatMessage *m);
void jf_chat_message_add_image(JfChatMessage *m, GdkTexture *texture);
guint jf_chat_message_get_n_images(JfChatMessage *m);
/* The "thinking" spinner shown until the first piece of the answer arrives. */
void jf_chat_message_set_waiting(JfChatMessage *m, gboolean waiting);
/* A small note under the text ("Stopped", an error); NULL hides it. */
void jf_chat_message_set_note(JfChatMessage *m, const char *note, gboolean is_error);

G_END_DECLS
