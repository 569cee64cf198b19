#include "jf-gallery-strip.h"

#define MAX_ITEMS 60

struct _JfGalleryStrip {
  GtkBox parent;
  GtkWidget *stack, *scroller, *items_box;
  GPtrArray *items;   /* JfGalleryEntry*, newest first, parallel to items_box's children */
  GCancellable *cancel;
};

enum { SIG_ACTIVATED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(JfGalleryStrip, jf_gallery_strip, GTK_TYPE_BOX)

static void on_item_clicked(GtkButton *button, JfGalleryStrip *s)
{
  JfGalleryEntry *e = g_object_get_data(G_OBJECT(button), "entry");
  for (guint i = 0; i < s->items->len; i++)
    if (g_ptr_array_index(s->items, i) == e)
      jf_gallery_strip_activate(s, i);
}

static GtkWidget *make_item(JfGalleryStrip *s, JfGalleryEntry *e)
{
  GtkWidget *button = gtk_button_new();
  gtk_widget_add_css_class(button, "gallery-item");
  gtk_widget_add_css_class(button, "flat");
  GdkTexture *t = e->thumb ? e->thumb : e->texture;
  GtkWidget *pic = t ? gtk_picture_new_for_paintable(GDK_PAINTABLE(t)) : gtk_picture_new();
  gtk_picture_set_can_shrink(GTK_PICTURE(pic), TRUE);
  gtk_picture_set_content_fit(GTK_PICTURE(pic), GTK_CONTENT_FIT_COVER);
  gtk_widget_set_size_request(pic, 72, 72);
  gtk_button_set_child(GTK_BUTTON(button), pic);
  g_autofree char *tip = jf_gallery_entry_describe(e);
  gtk_widget_set_tooltip_text(button, tip);
  gtk_accessible_update_property(GTK_ACCESSIBLE(button), GTK_ACCESSIBLE_PROPERTY_LABEL, tip, -1);
  g_object_set_data(G_OBJECT(button), "entry", e);
  g_signal_connect(button, "clicked", G_CALLBACK(on_item_clicked), s);
  return button;
}

static void trim(JfGalleryStrip *s)
{
  while (s->items->len > MAX_ITEMS) {
    gtk_box_remove(GTK_BOX(s->items_box), gtk_widget_get_last_child(s->items_box));
    g_ptr_array_remove_index(s->items, s->items->len - 1);
  }
  gtk_stack_set_visible_child_name(GTK_STACK(s->stack), s->items->len ? "items" : "empty");
}

void jf_gallery_strip_prepend(JfGalleryStrip *s, JfGalleryEntry *e)
{
  if (!e->thumb)
    jf_gallery_entry_make_thumb(e);
  g_ptr_array_insert(s->items, 0, e);
  gtk_box_prepend(GTK_BOX(s->items_box), make_item(s, e));
  trim(s);
  GtkAdjustment *h = gtk_scrolled_window_get_hadjustment(GTK_SCROLLED_WINDOW(s->scroller));
  gtk_adjustment_set_value(h, 0);
}

guint jf_gallery_strip_get_n_items(JfGalleryStrip *s)
{
  return s->items->len;
}

const JfGalleryEntry *jf_gallery_strip_get_item(JfGalleryStrip *s, guint index)
{
  return index < s->items->len ? g_ptr_array_index(s->items, index) : NULL;
}

void jf_gallery_strip_activate(JfGalleryStrip *s, guint index)
{
  if (index < s->items->len)
    g_signal_emit(s, signals[SIG_ACTIVATED], 0, g_ptr_array_index(s->items, index));
}

static void scan_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  g_task_return_pointer(task, jf_gallery_scan(data, MAX_ITEMS, cancel), (GDestroyNotify)g_ptr_array_unref);
}

static void scan_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  GPtrArray *found = g_task_propagate_pointer(G_TASK(res), NULL);
  if (!found)
    return;
  JfGalleryStrip *s = JF_GALLERY_STRIP(source);
  /* what was made while we scanned is newer: it stays in front; skip files it already shows */
  for (guint i = 0; i < found->len; i++) {
    JfGalleryEntry *e = g_ptr_array_index(found, i);
    gboolean dup = FALSE;
    for (guint k = 0; k < s->items->len && !dup; k++)
      dup = g_strcmp0(((JfGalleryEntry *)g_ptr_array_index(s->items, k))->path, e->path) == 0;
    if (dup)
      continue;
    found->pdata[i] = NULL;
    g_ptr_array_add(s->items, e);
    gtk_box_append(GTK_BOX(s->items_box), make_item(s, e));
  }
  g_ptr_array_unref(found);
  trim(s);
}

void jf_gallery_strip_load(JfGalleryStrip *s, const char *dir)
{
  GTask *task = g_task_new(s, s->cancel, scan_done, NULL);
  g_task_set_task_data(task, g_strdup(dir), g_free);
  g_task_run_in_thread(task, scan_thread);
  g_object_unref(task);
}

static void jf_gallery_strip_dispose(GObject *obj)
{
  JfGalleryStrip *s = JF_GALLERY_STRIP(obj);
  g_cancellable_cancel(s->cancel);
  gtk_widget_dispose_template(GTK_WIDGET(s), JF_TYPE_GALLERY_STRIP);
  G_OBJECT_CLASS(jf_gallery_strip_parent_class)->dispose(obj);
}

static void jf_gallery_strip_finalize(GObject *obj)
{
  JfGalleryStrip *s = JF_GALLERY_STRIP(obj);
  g_ptr_array_unref(s->items);
  g_object_unref(s->cancel);
  G_OBJECT_CLASS(jf_gallery_strip_parent_class)->finalize(obj);
}

static void jf_gallery_strip_class_init(JfGalleryStripClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_gallery_strip_dispose;
  oc->finalize = jf_gallery_strip_finalize;
  signals[SIG_ACTIVATED] = g_signal_new("activated", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL,
                                        NULL, G_TYPE_NONE, 1, G_TYPE_POINTER);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-gallery-strip.ui");
  gtk_widget_class_bind_template_child(wc, JfGalleryStrip, stack);
  gtk_widget_class_bind_template_child(wc, JfGalleryStrip, scroller);
  gtk_widget_class_bind_template_child(wc, JfGalleryStrip, items_box);
  gtk_widget_class_set_css_name(wc, "gallerystrip");
}

static void jf_gallery_strip_init(JfGalleryStrip *s)
{
  gtk_widget_init_template(GTK_WIDGET(s));
  s->items = g_ptr_array_new_with_free_func((GDestroyNotify)jf_gallery_entry_free);
  s->cancel = g_cancellable_new();
  trim(s);
}
