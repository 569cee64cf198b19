#include "jf-chat-pane.h"
#include "jf-chat-store.h"
#include "jf-image-util.h"
#include "image.h"

struct _JfChatPane {
  GtkBox parent;
  /* template */
  GtkWidget *overlay, *scroller, *messages_box, *empty_box, *drop_box;
  GtkWidget *attachments_box, *attach_button, *input_view, *placeholder_label;
  GtkWidget *sampling_button, *send_stack, *send_button, *stop_button;
  GtkWidget *restore_box, *restore_label;
  GtkAdjustment *temperature_adj, *top_p_adj, *max_tokens_adj;

  JfEngine *engine;
  JfSettings *settings;
  char *store_dir;
  GPtrArray *entries;          /* JfChatEntry*, one per message widget, same order */
  GPtrArray *attachments;      /* GdkTexture: the images of the next turn */
  guint job;                   /* running chat turn, 0 = none */
  JfChatEntry *answer_entry;   /* of the running turn */
  JfChatMessage *answer_msg;
  JfChatEntry *question_entry;
  gboolean stick_to_bottom;
  gboolean stop_requested;     /* Stop was pressed during the running turn */
  gboolean restored;
  /* reading the shown conversation back into the model (jf_engine_chat_restore) */
  guint restore_job;           /* 0 = none */
  guint restore_n;             /* entries [0, restore_n) were handed to it */
  const char *restore_afresh;  /* the divider shown if it fails */
  GCancellable *cancel;        /* for our threads (restore, file loading) */
  /* saving: one write at a time; a change during a write asks for another */
  gboolean saving, save_again;
  guint epoch;                 /* bumped by "new chat": results of older writes are ignored */
};

enum { PROP_0, PROP_BUSY, PROP_REPLAYING, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE(JfChatPane, jf_chat_pane, GTK_TYPE_BOX)

static void toast(JfChatPane *p, const char *msg)
{
  gtk_widget_activate_action(GTK_WIDGET(p), "win.toast", "s", msg);
}

static void set_busy(JfChatPane *p, guint job)
{
  p->job = job;
  gtk_stack_set_visible_child_name(GTK_STACK(p->send_stack), job ? "stop" : "send");
  g_object_notify_by_pspec(G_OBJECT(p), props[PROP_BUSY]);
}

/* The status line while the engine reads the conversation back into the model. */
static void show_restoring(JfChatPane *p, gboolean on)
{
  gtk_label_set_text(GTK_LABEL(p->restore_label), "Reading the conversation back…");
  gtk_widget_set_visible(p->restore_box, on);
  g_object_notify_by_pspec(G_OBJECT(p), props[PROP_REPLAYING]);
}

static void update_empty(JfChatPane *p)
{
  gtk_widget_set_visible(p->empty_box, p->entries->len == 0);
}

static void update_placeholder(JfChatPane *p)
{
  GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->input_view));
  gtk_widget_set_visible(p->placeholder_label, gtk_text_buffer_get_char_count(buf) == 0);
}

/* --- saving ---------------------------------------------------------------------------------- */

typedef struct {
  char *dir;
  GPtrArray *entries;  /* copies */
  guint epoch;
} SaveData;

static void save_data_free(SaveData *d)
{
  g_free(d->dir);
  g_ptr_array_unref(d->entries);
  g_free(d);
}

static void save_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  SaveData *d = data;
  GError *error = NULL;
  if (jf_chat_store_save(d->dir, d->entries, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void start_save(JfChatPane *p);

static void save_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  JfChatPane *p = JF_CHAT_PANE(source);
  SaveData *d = g_task_get_task_data(G_TASK(res));
  GError *error = NULL;
  p->saving = FALSE;
  if (!g_task_propagate_boolean(G_TASK(res), &error)) {
    g_autofree char *msg = g_strdup_printf("The conversation could not be saved: %s", error->message);
    toast(p, msg);
    g_error_free(error);
  } else if (d->epoch == p->epoch) {
    /* images written by this save now have a file: remember it so they are not written again */
    for (guint i = 0; i < d->entries->len && i < p->entries->len; i++) {
      JfChatEntry *done = g_ptr_array_index(d->entries, i), *live = g_ptr_array_index(p->entries, i);
      for (guint k = 0; k < live->images->len && k < done->images->len; k++)
        if (!g_ptr_array_index(live->images, k) &&
            g_ptr_array_index(live->textures, k) == g_ptr_array_index(done->textures, k))
          live->images->pdata[k] = g_strdup(g_ptr_array_index(done->images, k));
    }
  }
  if (p->save_again) {
    p->save_again = FALSE;
    start_save(p);
  }
}

static void start_save(JfChatPane *p)
{
  if (p->saving) {
    p->save_again = TRUE;
    return;
  }
  SaveData *d = g_new0(SaveData, 1);
  d->dir = g_strdup(p->store_dir);
  d->epoch = p->epoch;
  d->entries = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  for (guint i = 0; i < p->entries->len; i++) {
    JfChatEntry *e = g_ptr_array_index(p->entries, i);
    /* the running answer is saved when it ends */
    if (e == p->answer_entry || e == p->question_entry)
      continue;
    g_ptr_array_add(d->entries, jf_chat_entry_copy(e));
  }
  p->saving = TRUE;
  GTask *task = g_task_new(p, NULL, save_done, NULL);
  g_task_set_task_data(task, d, (GDestroyNotify)save_data_free);
  g_task_run_in_thread(task, save_thread);
  g_object_unref(task);
}

void jf_chat_pane_flush(JfChatPane *p)
{
  while (p->saving || p->save_again)
    g_main_context_iteration(NULL, TRUE);
}

gboolean jf_chat_pane_is_saving(JfChatPane *p)
{
  return p->saving || p->save_again;
}

/* --- messages -------------------------------------------------------------------------------- */

static void scroll_to_bottom(JfChatPane *p)
{
  p->stick_to_bottom = TRUE;
  GtkAdjustment *adj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(p->scroller));
  gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj));
}

static gboolean scroll_idle(gpointer data)
{
  scroll_to_bottom(data);
  return G_SOURCE_REMOVE;
}

static void on_vadj_changed(GtkAdjustment *adj, GParamSpec *pspec, JfChatPane *p)
{
  (void)pspec;
  /* follow a growing answer unless the user scrolled up to read */
  if (p->stick_to_bottom)
    gtk_adjustment_set_value(adj, gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj));
}

static void on_vadj_value(GtkAdjustment *adj, JfChatPane *p)
{
  double bottom = gtk_adjustment_get_upper(adj) - gtk_adjustment_get_page_size(adj);
  p->stick_to_bottom = gtk_adjustment_get_value(adj) >= bottom - 24;
}

static JfChatMessage *add_message(JfChatPane *p, JfChatEntry *e)
{
  GtkWidget *w = jf_chat_message_new(g_strcmp0(e->role, "user") == 0);
  JfChatMessage *m = JF_CHAT_MESSAGE(w);
  for (guint i = 0; i < e->textures->len; i++) {
    GdkTexture *t = g_ptr_array_index(e->textures, i);
    if (t)
      jf_chat_message_add_image(m, t);
  }
  jf_chat_message_set_text(m, e->text);
  if (e->stopped)
    jf_chat_message_set_note(m, "Stopped", FALSE);
  gtk_box_append(GTK_BOX(p->messages_box), w);
  g_ptr_array_add(p->entries, e);
  update_empty(p);
  return m;
}

guint jf_chat_pane_get_n_messages(JfChatPane *p)
{
  return p->entries->len;
}

JfChatMessage *jf_chat_pane_get_message(JfChatPane *p, guint index)
{
  guint i = 0;
  for (GtkWidget *c = gtk_widget_get_first_child(p->messages_box); c; c = gtk_widget_get_next_sibling(c)) {
    if (!JF_IS_CHAT_MESSAGE(c))
      continue;
    if (i++ == index)
      return JF_CHAT_MESSAGE(c);
  }
  return NULL;
}

static void clear_messages(JfChatPane *p)
{
  GtkWidget *c;
  while ((c = gtk_widget_get_first_child(p->messages_box)))
    gtk_box_remove(GTK_BOX(p->messages_box), c);
  g_ptr_array_set_size(p->entries, 0);
  update_empty(p);
}

/* --- attachments ----------------------------------------------------------------------------- */

static void rebuild_attachments(JfChatPane *p);

static void on_remove_attachment(GtkButton *button, JfChatPane *p)
{
  GdkTexture *t = g_object_get_data(G_OBJECT(button), "texture");
  g_ptr_array_remove(p->attachments, t);
  rebuild_attachments(p);
}

static void rebuild_attachments(JfChatPane *p)
{
  GtkWidget *c;
  while ((c = gtk_widget_get_first_child(p->attachments_box)))
    gtk_box_remove(GTK_BOX(p->attachments_box), c);
  for (guint i = 0; i < p->attachments->len; i++) {
    GdkTexture *t = g_ptr_array_index(p->attachments, i);
    GtkWidget *overlay = gtk_overlay_new();
    GtkWidget *pic = gtk_picture_new_for_paintable(GDK_PAINTABLE(t));
    gtk_picture_set_can_shrink(GTK_PICTURE(pic), TRUE);
    gtk_picture_set_content_fit(GTK_PICTURE(pic), GTK_CONTENT_FIT_COVER);
    gtk_widget_set_size_request(pic, 64, 64);
    gtk_widget_add_css_class(pic, "thumbnail");
    gtk_overlay_set_child(GTK_OVERLAY(overlay), pic);
    GtkWidget *rm = gtk_button_new_from_icon_name("window-close-symbolic");
    gtk_widget_set_tooltip_text(rm, "Remove");
    gtk_widget_add_css_class(rm, "circular");
    gtk_widget_add_css_class(rm, "osd");
    gtk_widget_add_css_class(rm, "attachment-remove");
    gtk_widget_set_halign(rm, GTK_ALIGN_END);
    gtk_widget_set_valign(rm, GTK_ALIGN_START);
    g_object_set_data_full(G_OBJECT(rm), "texture", g_object_ref(t), g_object_unref);
    g_signal_connect(rm, "clicked", G_CALLBACK(on_remove_attachment), p);
    gtk_overlay_add_overlay(GTK_OVERLAY(overlay), rm);
    gtk_box_append(GTK_BOX(p->attachments_box), overlay);
  }
  gtk_widget_set_visible(p->attachments_box, p->attachments->len > 0);
}

void jf_chat_pane_attach_texture(JfChatPane *p, GdkTexture *texture)
{
  g_return_if_fail(JF_IS_CHAT_PANE(p) && GDK_IS_TEXTURE(texture));
  g_ptr_array_add(p->attachments, g_object_ref(texture));
  rebuild_attachments(p);
}

guint jf_chat_pane_get_n_attachments(JfChatPane *p)
{
  return p->attachments->len;
}

void jf_chat_pane_clear_attachments(JfChatPane *p)
{
  g_ptr_array_set_size(p->attachments, 0);
  rebuild_attachments(p);
}

typedef struct {
  GPtrArray *paths;     /* char* */
  GPtrArray *textures;  /* results */
  GString *errors;
} LoadData;

static void load_data_free(LoadData *d)
{
  g_ptr_array_unref(d->paths);
  g_ptr_array_unref(d->textures);
  g_string_free(d->errors, TRUE);
  g_free(d);
}

static void load_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  LoadData *d = data;
  for (guint i = 0; i < d->paths->len && !g_cancellable_is_cancelled(cancel); i++) {
    const char *path = g_ptr_array_index(d->paths, i);
    GError *error = NULL;
    JfImage *img = image_load(path, &error);
    if (!img) {
      g_autofree char *base = g_path_get_basename(path);
      g_string_append_printf(d->errors, "%s%s: %s", d->errors->len ? "; " : "", base, error->message);
      g_error_free(error);
      continue;
    }
    g_ptr_array_add(d->textures, jf_texture_from_image(img));
    image_free(img);
  }
  g_task_return_boolean(task, TRUE);
}

static void load_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  if (!g_task_propagate_boolean(G_TASK(res), NULL))
    return;
  JfChatPane *p = JF_CHAT_PANE(source);
  LoadData *d = g_task_get_task_data(G_TASK(res));
  for (guint i = 0; i < d->textures->len; i++)
    jf_chat_pane_attach_texture(p, g_ptr_array_index(d->textures, i));
  if (d->errors->len) {
    g_autofree char *msg = g_strdup_printf("Could not attach %s", d->errors->str);
    toast(p, msg);
  }
}

void jf_chat_pane_attach_files(JfChatPane *p, GSList *files)
{
  LoadData *d = g_new0(LoadData, 1);
  d->paths = g_ptr_array_new_with_free_func(g_free);
  d->textures = g_ptr_array_new_with_free_func(g_object_unref);
  d->errors = g_string_new(NULL);
  for (GSList *l = files; l; l = l->next) {
    char *path = g_file_get_path(l->data);
    if (path)
      g_ptr_array_add(d->paths, path);
  }
  GTask *task = g_task_new(p, p->cancel, load_done, NULL);
  g_task_set_task_data(task, d, (GDestroyNotify)load_data_free);
  g_task_run_in_thread(task, load_thread);
  g_object_unref(task);
}

static void on_attach_response(GtkNativeDialog *dialog, int response, JfChatPane *p)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    GListModel *files = gtk_file_chooser_get_files(GTK_FILE_CHOOSER(dialog));
    GSList *list = NULL;
    for (guint i = 0; i < g_list_model_get_n_items(files); i++)
      list = g_slist_append(list, g_list_model_get_item(files, i));
    jf_chat_pane_attach_files(p, list);
    g_slist_free_full(list, g_object_unref);
    g_object_unref(files);
  }
  g_object_unref(dialog);
}

void jf_chat_pane_open_attach_dialog(JfChatPane *p)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(p));
  GtkFileChooserNative *dlg = gtk_file_chooser_native_new("Attach Images", GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
                                                          GTK_FILE_CHOOSER_ACTION_OPEN, "_Attach", "_Cancel");
  gtk_file_chooser_set_select_multiple(GTK_FILE_CHOOSER(dlg), TRUE);
  GtkFileFilter *filter = jf_image_file_filter_new();
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dlg), filter);
  g_object_unref(filter);
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dlg), TRUE);
  g_signal_connect(dlg, "response", G_CALLBACK(on_attach_response), p);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dlg));
}

/* --- drag and drop, paste -------------------------------------------------------------------- */

static gboolean on_drop(GtkDropTarget *target, const GValue *value, double x, double y, JfChatPane *p)
{
  (void)target;
  (void)x;
  (void)y;
  gtk_widget_set_visible(p->drop_box, FALSE);
  if (G_VALUE_HOLDS(value, GDK_TYPE_TEXTURE)) {
    jf_chat_pane_attach_texture(p, g_value_get_object(value));
    return TRUE;
  }
  if (G_VALUE_HOLDS(value, GDK_TYPE_FILE_LIST)) {
    jf_chat_pane_attach_files(p, g_value_get_boxed(value));
    return TRUE;
  }
  return FALSE;
}

static GdkDragAction on_drop_enter(GtkDropTarget *target, double x, double y, JfChatPane *p)
{
  (void)target;
  (void)x;
  (void)y;
  gtk_widget_set_visible(p->drop_box, TRUE);
  return GDK_ACTION_COPY;
}

static void on_drop_leave(GtkDropTarget *target, JfChatPane *p)
{
  (void)target;
  gtk_widget_set_visible(p->drop_box, FALSE);
}

static void on_paste_texture(GObject *source, GAsyncResult *res, gpointer user)
{
  JfChatPane *p = user;
  GError *error = NULL;
  GdkTexture *t = gdk_clipboard_read_texture_finish(GDK_CLIPBOARD(source), res, &error);
  if (t) {
    jf_chat_pane_attach_texture(p, t);
    g_object_unref(t);
  } else {
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED))
      toast(p, error->message);
    g_error_free(error);
  }
  g_object_unref(p);
}

static void on_paste_files(GObject *source, GAsyncResult *res, gpointer user)
{
  JfChatPane *p = user;
  const GValue *v = gdk_clipboard_read_value_finish(GDK_CLIPBOARD(source), res, NULL);
  if (v && G_VALUE_HOLDS(v, GDK_TYPE_FILE_LIST))
    jf_chat_pane_attach_files(p, g_value_get_boxed(v));
  g_object_unref(p);
}

/* Paste an image (data or copied files) as an attachment; text pastes as usual. */
static void on_paste(GtkTextView *view, JfChatPane *p)
{
  GdkClipboard *cb = gtk_widget_get_clipboard(GTK_WIDGET(view));
  GdkContentFormats *formats = gdk_clipboard_get_formats(cb);
  if (gdk_content_formats_contain_gtype(formats, GDK_TYPE_TEXTURE)) {
    g_signal_stop_emission_by_name(view, "paste-clipboard");
    gdk_clipboard_read_texture_async(cb, p->cancel, on_paste_texture, g_object_ref(p));
  } else if (gdk_content_formats_contain_gtype(formats, GDK_TYPE_FILE_LIST)) {
    g_signal_stop_emission_by_name(view, "paste-clipboard");
    gdk_clipboard_read_value_async(cb, GDK_TYPE_FILE_LIST, G_PRIORITY_DEFAULT, p->cancel, on_paste_files,
                                   g_object_ref(p));
  }
}

/* --- sending --------------------------------------------------------------------------------- */

static JfSampling current_sampling(JfChatPane *p)
{
  JfSampling s = sampler_defaults();
  s.temperature = (float)gtk_adjustment_get_value(p->temperature_adj);
  s.top_p = (float)gtk_adjustment_get_value(p->top_p_adj);
  s.max_new_tokens = (int)gtk_adjustment_get_value(p->max_tokens_adj);
  s.seed = g_random_int();
  return s;
}

gboolean jf_chat_pane_is_busy(JfChatPane *p)
{
  return p->job != 0;
}

gboolean jf_chat_pane_send(JfChatPane *p)
{
  g_return_val_if_fail(JF_IS_CHAT_PANE(p), FALSE);
  if (p->job || !p->engine)
    return FALSE;
  GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->input_view));
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds(buf, &a, &b);
  g_autofree char *raw = gtk_text_buffer_get_text(buf, &a, &b, FALSE);
  char *text = g_strstrip(raw);
  if (!*text) {
    if (p->attachments->len)
      toast(p, "Type a question about the image");
    return FALSE;
  }
  if (!jf_engine_is_loaded(p->engine)) {
    toast(p, "The model is not loaded yet");
    return FALSE;
  }
  JfChatEntry *q = jf_chat_entry_new("user", text);
  for (guint i = 0; i < p->attachments->len; i++) {
    g_ptr_array_add(q->images, NULL);
    g_ptr_array_add(q->textures, g_object_ref(g_ptr_array_index(p->attachments, i)));
  }
  q->remembered = TRUE;
  add_message(p, q);
  JfChatEntry *a_entry = jf_chat_entry_new("assistant", "");
  a_entry->remembered = TRUE;
  JfChatMessage *msg = add_message(p, a_entry);
  jf_chat_message_set_waiting(msg, TRUE);
  p->question_entry = q;
  p->answer_entry = a_entry;
  p->answer_msg = msg;

  JfSampling s = current_sampling(p);
  guint job = jf_engine_chat_send(p->engine, text, p->attachments, &s);
  g_ptr_array_set_size(p->attachments, 0);
  rebuild_attachments(p);
  gtk_text_buffer_set_text(buf, "", 0);
  p->stop_requested = FALSE;
  set_busy(p, job);
  scroll_to_bottom(p);
  return TRUE;
}

void jf_chat_pane_stop(JfChatPane *p)
{
  if (p->job) {
    p->stop_requested = TRUE;
    jf_engine_cancel(p->engine, p->job);
  }
}

static void on_chat_text(JfEngine *e, guint job, const char *piece, JfChatPane *p)
{
  (void)e;
  if (job != p->job || !p->answer_msg)
    return;
  jf_chat_message_append_text(p->answer_msg, piece);
}

static void on_chat_finished(JfEngine *e, guint job, const char *answer, GError *error, JfChatPane *p)
{
  (void)e;
  if (job != p->job)
    return;
  JfChatMessage *msg = p->answer_msg;
  JfChatEntry *ae = p->answer_entry, *qe = p->question_entry;
  jf_chat_message_set_waiting(msg, FALSE);
  if (!error) {
    /* the whole answer as the engine decoded it (the pieces may differ in leading space) */
    if (answer) {
      g_autofree char *clean = g_strdup(answer);
      g_strchug(clean);
      jf_chat_message_set_text(msg, clean);
    }
    /* stopped during the answer: what was said so far stays in the conversation */
    if (p->stop_requested) {
      ae->stopped = TRUE;
      jf_chat_message_set_note(msg, "Stopped", FALSE);
    }
  } else {
    /* chat_send leaves the conversation as it was: this turn is not in the model's memory */
    ae->remembered = qe->remembered = FALSE;
    ae->stopped = TRUE;
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      jf_chat_message_set_note(msg, "Stopped — the model will not remember this turn", FALSE);
    } else {
      g_autofree char *note = g_strdup_printf("No answer: %s", error->message);
      jf_chat_message_set_note(msg, note, TRUE);
    }
  }
  g_free(ae->text);
  ae->text = g_strdup(jf_chat_message_get_text(msg));
  p->answer_entry = NULL;
  p->question_entry = NULL;
  p->answer_msg = NULL;
  p->stop_requested = FALSE;
  set_busy(p, 0);
  start_save(p);
}

void jf_chat_pane_new_chat(JfChatPane *p)
{
  if (p->job) {
    jf_engine_cancel(p->engine, p->job);
    p->answer_entry = p->question_entry = NULL;
    p->answer_msg = NULL;
    set_busy(p, 0);
  }
  if (p->restore_job) {
    jf_engine_cancel(p->engine, p->restore_job);
    p->restore_job = 0;
    show_restoring(p, FALSE);
  }
  clear_messages(p);
  p->epoch++;
  if (p->engine)
    jf_engine_chat_reset(p->engine);
  start_save(p);
  jf_chat_pane_focus_input(p);
}

void jf_chat_pane_focus_input(JfChatPane *p)
{
  gtk_widget_grab_focus(p->input_view);
}

/* Enter sends, Shift+Enter starts a new line. */
static gboolean on_input_key(GtkEventControllerKey *c, guint keyval, guint keycode, GdkModifierType state,
                             JfChatPane *p)
{
  (void)c;
  (void)keycode;
  if ((keyval == GDK_KEY_Return || keyval == GDK_KEY_KP_Enter) &&
      !(state & (GDK_SHIFT_MASK | GDK_CONTROL_MASK | GDK_ALT_MASK))) {
    jf_chat_pane_send(p);
    return TRUE;
  }
  return FALSE;
}

/* A note between messages, before message `index` (at the end if there is none). */
static void insert_divider(JfChatPane *p, guint index, const char *text)
{
  GtkWidget *divider = gtk_label_new(text);
  gtk_label_set_wrap(GTK_LABEL(divider), TRUE);
  gtk_widget_add_css_class(divider, "restored-divider");
  gtk_widget_add_css_class(divider, "dim-label");
  gtk_widget_add_css_class(divider, "caption");
  JfChatMessage *at = jf_chat_pane_get_message(p, index);
  if (at)
    gtk_box_insert_child_after(GTK_BOX(p->messages_box), divider, gtk_widget_get_prev_sibling(GTK_WIDGET(at)));
  else
    gtk_box_append(GTK_BOX(p->messages_box), divider);
}

/* What the dividers said about the model's memory is out of date once it was read back again. */
static void remove_dividers(JfChatPane *p)
{
  GtkWidget *c = gtk_widget_get_first_child(p->messages_box);
  while (c) {
    GtkWidget *next = gtk_widget_get_next_sibling(c);
    if (gtk_widget_has_css_class(c, "restored-divider"))
      gtk_box_remove(GTK_BOX(p->messages_box), c);
    c = next;
  }
}

/* --- reading the conversation back into the model -------------------------------------------- */

/* The model's memory is empty (start, model loaded again): the engine replays the conversation
 * on screen so the next question continues it. A message sent meanwhile is queued after it (the
 * engine runs jobs in order). afresh: the divider to show if that fails. */
static void start_restore(JfChatPane *p, const char *afresh)
{
  if (!p->engine || p->entries->len == 0)
    return;
  if (p->restore_job)
    jf_engine_cancel(p->engine, p->restore_job);
  GPtrArray *shown = g_ptr_array_new();
  for (guint i = 0; i < p->entries->len; i++) {
    JfChatEntry *e = g_ptr_array_index(p->entries, i);
    /* a running turn is the engine's already; the entries are in order, so it is the tail */
    if (e == p->question_entry || e == p->answer_entry)
      break;
    g_ptr_array_add(shown, e);
  }
  p->restore_n = shown->len;
  p->restore_afresh = afresh;
  p->restore_job = shown->len ? jf_engine_chat_restore(p->engine, shown) : 0;
  g_ptr_array_unref(shown);
  show_restoring(p, p->restore_job != 0);
}

static void on_restore_progress(JfEngine *e, guint job, guint done, guint total, JfChatPane *p)
{
  (void)e;
  if (job != p->restore_job || total < 2)
    return;
  g_autofree char *text = g_strdup_printf("Reading the conversation back… (%u of %u)", done, total);
  gtk_label_set_text(GTK_LABEL(p->restore_label), text);
}

static void on_restore_finished(JfEngine *e, guint job, GArray *flags, guint dropped, GError *error,
                                JfChatPane *p)
{
  (void)e;
  if (job != p->restore_job)
    return;
  p->restore_job = 0;
  show_restoring(p, FALSE);
  remove_dividers(p);
  guint n = MIN(p->restore_n, p->entries->len);
  if (error) {
    for (guint i = 0; i < n; i++)
      ((JfChatEntry *)g_ptr_array_index(p->entries, i))->remembered = FALSE;
    if (!g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_autofree char *msg = g_strdup_printf("The model could not read the conversation back: %s", error->message);
      toast(p, msg);
    }
    insert_divider(p, n, p->restore_afresh);
  } else {
    guint first = n;
    for (guint i = 0; i < n && flags && i < flags->len; i++) {
      JfChatEntry *entry = g_ptr_array_index(p->entries, i);
      entry->remembered = g_array_index(flags, gboolean, i);
      if (entry->remembered && first == n)
        first = i;
    }
    if (dropped > 0)
      insert_divider(p, first, "Older messages no longer fit in the model's context — it remembers from here");
  }
  start_save(p);
}

gboolean jf_chat_pane_is_replaying(JfChatPane *p)
{
  return p->restore_job != 0;
}

/* A (re)loaded model has an empty KV cache: read what is on screen back into it. */
static void on_load_finished(JfEngine *e, GError *error, JfChatPane *p)
{
  (void)e;
  if (error || p->entries->len == 0)
    return;
  start_restore(p, "The model was loaded again — it starts afresh from here");
}

/* --- restoring ------------------------------------------------------------------------------- */

static void restore_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  GError *error = NULL;
  GPtrArray *entries = jf_chat_store_load(data, &error);
  if (entries)
    g_task_return_pointer(task, entries, (GDestroyNotify)g_ptr_array_unref);
  else
    g_task_return_error(task, error);
}

static void restore_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  GError *error = NULL;
  GPtrArray *entries = g_task_propagate_pointer(G_TASK(res), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(error);
    return;
  }
  JfChatPane *p = JF_CHAT_PANE(source);
  p->restored = TRUE;
  if (!entries) {
    g_autofree char *msg = g_strdup_printf("The last conversation could not be restored: %s", error->message);
    toast(p, msg);
    g_error_free(error);
    return;
  }
  /* the user already started a new conversation while we were reading: keep theirs */
  if (p->entries->len == 0 && entries->len > 0) {
    for (guint i = 0; i < entries->len; i++) {
      JfChatEntry *e = g_ptr_array_index(entries, i);
      e->remembered = FALSE;
      add_message(p, e);
      entries->pdata[i] = NULL;
    }
    /* while the model loads, its load-finished does it */
    if (p->engine && jf_engine_is_loaded(p->engine) && !jf_engine_is_loading(p->engine))
      start_restore(p, "Restored from your last session — the model starts afresh from here");
    g_idle_add_full(G_PRIORITY_LOW, scroll_idle, g_object_ref(p), g_object_unref);
  }
  g_ptr_array_unref(entries);
}

gboolean jf_chat_pane_is_restored(JfChatPane *p)
{
  return p->restored;
}

void jf_chat_pane_setup(JfChatPane *p, JfEngine *engine, JfSettings *settings, const char *store_dir)
{
  g_return_if_fail(JF_IS_CHAT_PANE(p) && JF_IS_ENGINE(engine) && settings);
  g_set_object(&p->engine, engine);
  g_free(p->store_dir);
  p->store_dir = store_dir ? g_strdup(store_dir) : jf_chat_store_dir();
  g_signal_connect_object(engine, "chat-text", G_CALLBACK(on_chat_text), p, 0);
  g_signal_connect_object(engine, "chat-finished", G_CALLBACK(on_chat_finished), p, 0);
  g_signal_connect_object(engine, "load-finished", G_CALLBACK(on_load_finished), p, 0);
  g_signal_connect_object(engine, "chat-restore-progress", G_CALLBACK(on_restore_progress), p, 0);
  g_signal_connect_object(engine, "chat-restore-finished", G_CALLBACK(on_restore_finished), p, 0);
  gtk_adjustment_set_value(p->temperature_adj, settings->temperature);
  gtk_adjustment_set_value(p->top_p_adj, settings->top_p);
  gtk_adjustment_set_value(p->max_tokens_adj, settings->max_tokens);
  /* only now: setting the adjustments above must not write half-set values back */
  p->settings = settings;
  GTask *task = g_task_new(p, p->cancel, restore_done, NULL);
  g_task_set_task_data(task, g_strdup(p->store_dir), g_free);
  g_task_run_in_thread(task, restore_thread);
  g_object_unref(task);
}

static void on_sampling_changed(GtkAdjustment *adj, JfChatPane *p)
{
  (void)adj;
  if (!p->settings)
    return;
  p->settings->temperature = gtk_adjustment_get_value(p->temperature_adj);
  p->settings->top_p = gtk_adjustment_get_value(p->top_p_adj);
  p->settings->max_tokens = (int)gtk_adjustment_get_value(p->max_tokens_adj);
}

/* --- GObject --------------------------------------------------------------------------------- */

static void jf_chat_pane_dispose(GObject *obj)
{
  JfChatPane *p = JF_CHAT_PANE(obj);
  if (p->cancel)
    g_cancellable_cancel(p->cancel);
  if (p->job && p->engine)
    jf_engine_cancel(p->engine, p->job);
  if (p->restore_job && p->engine)
    jf_engine_cancel(p->engine, p->restore_job);
  p->job = p->restore_job = 0;
  g_clear_object(&p->engine);
  gtk_widget_dispose_template(GTK_WIDGET(p), JF_TYPE_CHAT_PANE);
  G_OBJECT_CLASS(jf_chat_pane_parent_class)->dispose(obj);
}

static void jf_chat_pane_finalize(GObject *obj)
{
  JfChatPane *p = JF_CHAT_PANE(obj);
  g_ptr_array_unref(p->entries);
  g_ptr_array_unref(p->attachments);
  g_clear_object(&p->cancel);
  g_free(p->store_dir);
  G_OBJECT_CLASS(jf_chat_pane_parent_class)->finalize(obj);
}

static void jf_chat_pane_get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec)
{
  JfChatPane *p = JF_CHAT_PANE(obj);
  switch (id) {
  case PROP_BUSY: g_value_set_boolean(value, p->job != 0); break;
  case PROP_REPLAYING: g_value_set_boolean(value, p->restore_job != 0); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void jf_chat_pane_class_init(JfChatPaneClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_chat_pane_dispose;
  oc->finalize = jf_chat_pane_finalize;
  oc->get_property = jf_chat_pane_get_property;
  props[PROP_BUSY] = g_param_spec_boolean("busy", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_REPLAYING] = g_param_spec_boolean("replaying", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(oc, N_PROPS, props);

  g_type_ensure(JF_TYPE_CHAT_MESSAGE);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-chat-pane.ui");
  gtk_widget_class_bind_template_child(wc, JfChatPane, overlay);
  gtk_widget_class_bind_template_child(wc, JfChatPane, scroller);
  gtk_widget_class_bind_template_child(wc, JfChatPane, messages_box);
  gtk_widget_class_bind_template_child(wc, JfChatPane, empty_box);
  gtk_widget_class_bind_template_child(wc, JfChatPane, drop_box);
  gtk_widget_class_bind_template_child(wc, JfChatPane, attachments_box);
  gtk_widget_class_bind_template_child(wc, JfChatPane, attach_button);
  gtk_widget_class_bind_template_child(wc, JfChatPane, input_view);
  gtk_widget_class_bind_template_child(wc, JfChatPane, placeholder_label);
  gtk_widget_class_bind_template_child(wc, JfChatPane, sampling_button);
  gtk_widget_class_bind_template_child(wc, JfChatPane, send_stack);
  gtk_widget_class_bind_template_child(wc, JfChatPane, send_button);
  gtk_widget_class_bind_template_child(wc, JfChatPane, stop_button);
  gtk_widget_class_bind_template_child(wc, JfChatPane, restore_box);
  gtk_widget_class_bind_template_child(wc, JfChatPane, restore_label);
  gtk_widget_class_bind_template_child(wc, JfChatPane, temperature_adj);
  gtk_widget_class_bind_template_child(wc, JfChatPane, top_p_adj);
  gtk_widget_class_bind_template_child(wc, JfChatPane, max_tokens_adj);
  gtk_widget_class_set_css_name(wc, "chatpane");
}

static void on_send_clicked(GtkButton *b, JfChatPane *p)
{
  (void)b;
  jf_chat_pane_send(p);
}

static void on_stop_clicked(GtkButton *b, JfChatPane *p)
{
  (void)b;
  jf_chat_pane_stop(p);
}

static void on_attach_clicked(GtkButton *b, JfChatPane *p)
{
  (void)b;
  jf_chat_pane_open_attach_dialog(p);
}

static void on_buffer_changed(GtkTextBuffer *buf, JfChatPane *p)
{
  (void)buf;
  update_placeholder(p);
}

static void jf_chat_pane_init(JfChatPane *p)
{
  gtk_widget_init_template(GTK_WIDGET(p));
  p->entries = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  p->attachments = g_ptr_array_new_with_free_func(g_object_unref);
  p->cancel = g_cancellable_new();
  p->stick_to_bottom = TRUE;

  g_signal_connect(p->send_button, "clicked", G_CALLBACK(on_send_clicked), p);
  g_signal_connect(p->stop_button, "clicked", G_CALLBACK(on_stop_clicked), p);
  g_signal_connect(p->attach_button, "clicked", G_CALLBACK(on_attach_clicked), p);
  g_signal_connect(p->input_view, "paste-clipboard", G_CALLBACK(on_paste), p);
  GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->input_view));
  g_signal_connect(buf, "changed", G_CALLBACK(on_buffer_changed), p);
  GtkEventController *keys = gtk_event_controller_key_new();
  gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
  g_signal_connect(keys, "key-pressed", G_CALLBACK(on_input_key), p);
  gtk_widget_add_controller(p->input_view, keys);

  GtkAdjustment *vadj = gtk_scrolled_window_get_vadjustment(GTK_SCROLLED_WINDOW(p->scroller));
  g_signal_connect(vadj, "notify::upper", G_CALLBACK(on_vadj_changed), p);
  g_signal_connect(vadj, "value-changed", G_CALLBACK(on_vadj_value), p);

  g_signal_connect(p->temperature_adj, "value-changed", G_CALLBACK(on_sampling_changed), p);
  g_signal_connect(p->top_p_adj, "value-changed", G_CALLBACK(on_sampling_changed), p);
  g_signal_connect(p->max_tokens_adj, "value-changed", G_CALLBACK(on_sampling_changed), p);

  GtkDropTarget *drop = gtk_drop_target_new(G_TYPE_INVALID, GDK_ACTION_COPY);
  GType types[] = { GDK_TYPE_FILE_LIST, GDK_TYPE_TEXTURE };
  gtk_drop_target_set_gtypes(drop, types, G_N_ELEMENTS(types));
  g_signal_connect(drop, "drop", G_CALLBACK(on_drop), p);
  g_signal_connect(drop, "enter", G_CALLBACK(on_drop_enter), p);
  g_signal_connect(drop, "leave", G_CALLBACK(on_drop_leave), p);
  gtk_widget_add_controller(GTK_WIDGET(p), GTK_EVENT_CONTROLLER(drop));

  update_empty(p);
  update_placeholder(p);
}
