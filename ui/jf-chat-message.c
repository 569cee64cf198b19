#include "jf-chat-message.h"

struct _JfChatMessage {
  GtkBox parent;
  GtkLabel *author_label;
  GtkWidget *bubble;
  GtkFlowBox *images_box;
  GtkWidget *waiting_box;
  GtkSpinner *spinner;
  GtkLabel *text_label;
  GtkLabel *note_label;
  GString *text;
  gboolean from_user;
  guint n_images;
};

G_DEFINE_FINAL_TYPE(JfChatMessage, jf_chat_message, GTK_TYPE_BOX)

static void jf_chat_message_finalize(GObject *obj)
{
  JfChatMessage *m = JF_CHAT_MESSAGE(obj);
  g_string_free(m->text, TRUE);
  G_OBJECT_CLASS(jf_chat_message_parent_class)->finalize(obj);
}

static void jf_chat_message_class_init(JfChatMessageClass *klass)
{
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  G_OBJECT_CLASS(klass)->finalize = jf_chat_message_finalize;
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-chat-message.ui");
  gtk_widget_class_bind_template_child(wc, JfChatMessage, author_label);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, bubble);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, images_box);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, waiting_box);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, spinner);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, text_label);
  gtk_widget_class_bind_template_child(wc, JfChatMessage, note_label);
  gtk_widget_class_set_css_name(wc, "chatmessage");
}

static void jf_chat_message_init(JfChatMessage *m)
{
  gtk_widget_init_template(GTK_WIDGET(m));
  m->text = g_string_new(NULL);
}

GtkWidget *jf_chat_message_new(gboolean from_user)
{
  JfChatMessage *m = g_object_new(JF_TYPE_CHAT_MESSAGE, NULL);
  m->from_user = from_user;
  gtk_label_set_text(m->author_label, from_user ? "You" : "JanusFlow");
  GtkAlign side = from_user ? GTK_ALIGN_END : GTK_ALIGN_START;
  gtk_widget_set_halign(GTK_WIDGET(m), side);
  gtk_widget_set_halign(GTK_WIDGET(m->author_label), side);
  gtk_widget_set_halign(GTK_WIDGET(m->note_label), side);
  gtk_widget_add_css_class(GTK_WIDGET(m), from_user ? "user" : "assistant");
  return GTK_WIDGET(m);
}

gboolean jf_chat_message_is_from_user(JfChatMessage *m)
{
  return m->from_user;
}

static void update_text(JfChatMessage *m)
{
  gtk_label_set_text(m->text_label, m->text->str);
  gtk_widget_set_visible(GTK_WIDGET(m->text_label), m->text->len > 0);
  gtk_accessible_update_property(GTK_ACCESSIBLE(m->bubble), GTK_ACCESSIBLE_PROPERTY_LABEL, m->text->str, -1);
}

void jf_chat_message_set_text(JfChatMessage *m, const char *text)
{
  g_string_assign(m->text, text ? text : "");
  update_text(m);
}

void jf_chat_message_append_text(JfChatMessage *m, const char *piece)
{
  if (!piece || !*piece)
    return;
  /* the model starts its answer after "Assistant:"; the first piece often has a leading space */
  if (m->text->len == 0)
    while (*piece == ' ')
      piece++;
  g_string_append(m->text, piece);
  if (m->text->len > 0)
    jf_chat_message_set_waiting(m, FALSE);
  update_text(m);
}

const char *jf_chat_message_get_text(JfChatMessage *m)
{
  return m->text->str;
}

void jf_chat_message_add_image(JfChatMessage *m, GdkTexture *texture)
{
  GtkWidget *pic = gtk_picture_new_for_paintable(GDK_PAINTABLE(texture));
  gtk_picture_set_can_shrink(GTK_PICTURE(pic), TRUE);
  gtk_picture_set_content_fit(GTK_PICTURE(pic), GTK_CONTENT_FIT_COVER);
  int w = gdk_texture_get_width(texture), h = gdk_texture_get_height(texture);
  /* thumbnails 160 px high, at most 240 wide, keeping the shape */
  int th = 160, tw = CLAMP(w * th / MAX(h, 1), 80, 240);
  gtk_widget_set_size_request(pic, tw, th);
  gtk_widget_add_css_class(pic, "thumbnail");
  gtk_accessible_update_property(GTK_ACCESSIBLE(pic), GTK_ACCESSIBLE_PROPERTY_LABEL, "Attached image", -1);
  gtk_flow_box_insert(m->images_box, pic, -1);
  gtk_widget_set_visible(GTK_WIDGET(m->images_box), TRUE);
  m->n_images++;
  gtk_flow_box_set_max_children_per_line(m->images_box, MIN(m->n_images, 4));
}

guint jf_chat_message_get_n_images(JfChatMessage *m)
{
  return m->n_images;
}

void jf_chat_message_set_waiting(JfChatMessage *m, gboolean waiting)
{
  gtk_widget_set_visible(m->waiting_box, waiting);
  gtk_spinner_set_spinning(m->spinner, waiting);
}

void jf_chat_message_set_note(JfChatMessage *m, const char *note, gboolean is_error)
{
  gtk_label_set_text(m->note_label, note ? note : "");
  gtk_widget_set_visible(GTK_WIDGET(m->note_label), note != NULL);
  if (is_error) {
    gtk_widget_add_css_class(GTK_WIDGET(m->note_label), "error");
    gtk_widget_remove_css_class(GTK_WIDGET(m->note_label), "dim-label");
  } else {
    gtk_widget_add_css_class(GTK_WIDGET(m->note_label), "dim-label");
    gtk_widget_remove_css_class(GTK_WIDGET(m->note_label), "error");
  }
}
