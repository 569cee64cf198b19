#include "jf-canvas-pane.h"
#include "jf-gallery-strip.h"
#include "jf-image-util.h"

struct _JfCanvasPane {
  GtkBox parent;
  /* template */
  GtkWidget *prompt_view, *run_stack, *generate_button, *stop_button;
  GtkWidget *cfg_scale, *cfg_value_label, *steps_spin, *seed_spin, *seed_lock, *batch_spin;
  GtkAdjustment *cfg_adj, *steps_adj, *seed_adj, *batch_adj;
  GtkWidget *canvas_overlay, *empty_box, *bottom_stack, *status_label, *progress_bar, *result_label;
  GtkWidget *actions_box, *save_button, *copy_button, *ask_button;
  JfCanvasView *canvas_view;
  JfGalleryStrip *gallery;

  JfEngine *engine;
  JfSettings *settings;
  GCancellable *cancel;
  /* the running generation */
  guint job;
  char *run_prompt;
  guint64 run_seed;
  int run_batch;
  int done_steps, planned_steps;
  float last_cfg;
  double wall_ms_sum;
  GString *steering;      /* "step:cfg/steps" whenever they change after the first step */
  /* the finished image on the canvas */
  JfGalleryEntry *current;
  guint n_saving;
};

enum { PROP_0, PROP_BUSY, PROP_HAS_IMAGE, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE(JfCanvasPane, jf_canvas_pane, GTK_TYPE_BOX)

static void toast(JfCanvasPane *p, const char *msg)
{
  gtk_widget_activate_action(GTK_WIDGET(p), "win.toast", "s", msg);
}

static void update_empty(JfCanvasPane *p)
{
  gtk_widget_set_visible(p->empty_box, jf_canvas_view_get_texture(p->canvas_view) == NULL && !p->job);
}

static void set_current(JfCanvasPane *p, JfGalleryEntry *e)
{
  g_clear_pointer(&p->current, jf_gallery_entry_free);
  p->current = e;
  if (e && e->texture)
    jf_canvas_view_set_texture(p->canvas_view, e->texture);
  else if (e && e->thumb)
    jf_canvas_view_set_texture(p->canvas_view, e->thumb);
  gtk_widget_set_sensitive(p->actions_box, e != NULL);
  g_autofree char *summary = e && e->has_params
    ? g_strdup_printf("%d steps · CFG %.1f · seed %" G_GUINT64_FORMAT "%s", e->steps, e->cfg, e->seed,
                      e->steering ? " · steered" : "")
    : NULL;
  gtk_label_set_text(GTK_LABEL(p->result_label), summary ? summary : "");
  update_empty(p);
  g_object_notify_by_pspec(G_OBJECT(p), props[PROP_HAS_IMAGE]);
}

static void set_job(JfCanvasPane *p, guint job)
{
  p->job = job;
  gtk_stack_set_visible_child_name(GTK_STACK(p->run_stack), job ? "stop" : "generate");
  gtk_widget_set_sensitive(p->batch_spin, job == 0);
  gtk_widget_set_sensitive(p->seed_spin, job == 0);
  update_empty(p);
  g_object_notify_by_pspec(G_OBJECT(p), props[PROP_BUSY]);
}

char *jf_canvas_pane_get_prompt(JfCanvasPane *p)
{
  GtkTextBuffer *buf = gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->prompt_view));
  GtkTextIter a, b;
  gtk_text_buffer_get_bounds(buf, &a, &b);
  char *text = gtk_text_buffer_get_text(buf, &a, &b, FALSE);
  return g_strstrip(text);
}

void jf_canvas_pane_set_prompt(JfCanvasPane *p, const char *prompt)
{
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(GTK_TEXT_VIEW(p->prompt_view)), prompt ? prompt : "", -1);
}

void jf_canvas_pane_focus_prompt(JfCanvasPane *p)
{
  gtk_widget_grab_focus(p->prompt_view);
}

JfCanvasView *jf_canvas_pane_get_view(JfCanvasPane *p)
{
  return p->canvas_view;
}

JfGalleryStrip *jf_canvas_pane_get_gallery(JfCanvasPane *p)
{
  return p->gallery;
}

guint jf_canvas_pane_get_n_saving(JfCanvasPane *p)
{
  return p->n_saving;
}

gboolean jf_canvas_pane_is_busy(JfCanvasPane *p)
{
  return p->job != 0;
}

GdkTexture *jf_canvas_pane_get_image(JfCanvasPane *p)
{
  return p->current ? p->current->texture : NULL;
}

/* --- running --------------------------------------------------------------------------------- */

static void set_status(JfCanvasPane *p, const char *text, double fraction)
{
  gtk_label_set_text(GTK_LABEL(p->status_label), text);
  if (fraction < 0)
    gtk_progress_bar_pulse(GTK_PROGRESS_BAR(p->progress_bar));
  else
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress_bar), fraction);
  gtk_stack_set_visible_child_name(GTK_STACK(p->bottom_stack), "progress");
}

static gboolean hide_status(gpointer data)
{
  JfCanvasPane *p = data;
  if (!p->job)
    gtk_stack_set_visible_child_name(GTK_STACK(p->bottom_stack), "actions");
  return G_SOURCE_REMOVE;
}

gboolean jf_canvas_pane_generate(JfCanvasPane *p)
{
  g_return_val_if_fail(JF_IS_CANVAS_PANE(p), FALSE);
  if (p->job || !p->engine)
    return FALSE;
  g_autofree char *prompt = jf_canvas_pane_get_prompt(p);
  if (!*prompt) {
    toast(p, "Type a prompt first");
    jf_canvas_pane_focus_prompt(p);
    return FALSE;
  }
  if (!jf_engine_is_loaded(p->engine)) {
    toast(p, "The model is not loaded yet");
    return FALSE;
  }
  if (!jf_engine_can_generate(p->engine)) {
    toast(p, "Making images needs the VAE folder: choose it with Change Model…");
    return FALSE;
  }
  if (!gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(p->seed_lock)))
    gtk_adjustment_set_value(p->seed_adj, g_random_int());
  JfGenParams gp = gen_params_defaults();
  gp.prompt = prompt;
  gp.steps = (int)gtk_adjustment_get_value(p->steps_adj);
  gp.cfg = (float)gtk_adjustment_get_value(p->cfg_adj);
  gp.seed = (guint64)gtk_adjustment_get_value(p->seed_adj);
  gp.batch = (int)gtk_adjustment_get_value(p->batch_adj);
  gp.preview = p->settings ? p->settings->preview : JF_PREVIEW_FAST;
  gp.preview_every = p->settings ? p->settings->preview_every : 5;

  g_free(p->run_prompt);
  p->run_prompt = g_strdup(prompt);
  p->run_seed = gp.seed;
  p->run_batch = gp.batch;
  p->done_steps = 0;
  p->planned_steps = gp.steps;
  p->last_cfg = gp.cfg;
  p->wall_ms_sum = 0;
  g_string_truncate(p->steering, 0);
  set_current(p, NULL);
  set_job(p, jf_engine_generate(p->engine, &gp));
  set_status(p, "Starting…", 0.0);
  return TRUE;
}

void jf_canvas_pane_stop(JfCanvasPane *p)
{
  if (p->job)
    jf_engine_cancel(p->engine, p->job);
}

static void on_gen_step(JfEngine *e, const JfEngineStep *st, JfCanvasPane *p)
{
  (void)e;
  if (st->job != p->job)
    return;
  if (st->preview)
    jf_canvas_view_set_texture(p->canvas_view, st->preview);
  if (st->step > 0 && (st->cfg != p->last_cfg || st->steps != p->planned_steps))
    g_string_append_printf(p->steering, "%s%d:%.2f/%d", p->steering->len ? " " : "", st->step, st->cfg, st->steps);
  p->done_steps = st->step + 1;
  p->planned_steps = st->steps;
  p->last_cfg = st->cfg;
  p->wall_ms_sum += st->wall_ms;
  double per_step = p->wall_ms_sum / p->done_steps / 1000.0;
  int left = MAX(0, p->planned_steps - p->done_steps);
  double eta = per_step * left;
  g_autofree char *eta_text = eta >= 90 ? g_strdup_printf("about %.0f min left", eta / 60)
                                        : g_strdup_printf("about %.0f s left", eta);
  g_autofree char *text = left > 0
    ? g_strdup_printf("Step %d of %d · %.2f s per step · %s", p->done_steps, p->planned_steps, per_step, eta_text)
    : g_strdup_printf("Step %d of %d · decoding…", p->done_steps, p->planned_steps);
  set_status(p, text, (double)p->done_steps / MAX(p->planned_steps, 1));
}

typedef struct {
  char *dir;
  JfGalleryEntry *entry;  /* a copy */
} SaveData;

static void save_data_free(SaveData *d)
{
  g_free(d->dir);
  jf_gallery_entry_free(d->entry);
  g_free(d);
}

static void gallery_save_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  SaveData *d = data;
  GError *error = NULL;
  if (jf_gallery_save(d->dir, d->entry, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void gallery_save_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  JfCanvasPane *p = JF_CANVAS_PANE(source);
  SaveData *d = g_task_get_task_data(G_TASK(res));
  GError *error = NULL;
  p->n_saving--;
  if (!g_task_propagate_boolean(G_TASK(res), &error)) {
    g_autofree char *msg = g_strdup_printf("The image could not be saved to the gallery: %s", error->message);
    toast(p, msg);
    g_error_free(error);
    return;
  }
  /* tell the strip item and the shown image where the file is */
  for (guint i = 0; i < jf_gallery_strip_get_n_items(p->gallery); i++) {
    JfGalleryEntry *e = (JfGalleryEntry *)jf_gallery_strip_get_item(p->gallery, i);
    if (e->texture == d->entry->texture && !e->path)
      e->path = g_strdup(d->entry->path);
  }
  if (p->current && p->current->texture == d->entry->texture && !p->current->path)
    p->current->path = g_strdup(d->entry->path);
}

static void on_gen_finished(JfEngine *e, guint job, GPtrArray *textures, GError *error, JfCanvasPane *p)
{
  (void)e;
  if (job != p->job)
    return;
  set_job(p, 0);
  if (error) {
    if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
      g_autofree char *text = g_strdup_printf("Stopped after %d of %d steps", p->done_steps, p->planned_steps);
      set_status(p, text, (double)p->done_steps / MAX(p->planned_steps, 1));
    } else {
      g_autofree char *msg = g_strdup_printf("The image could not be made: %s", error->message);
      toast(p, msg);
      set_status(p, "Failed", 0.0);
    }
    g_timeout_add_seconds_full(G_PRIORITY_DEFAULT, 4, hide_status, g_object_ref(p), g_object_unref);
    update_empty(p);
    return;
  }
  g_autofree char *dir = jf_settings_get_save_dir(p->settings);
  for (guint i = textures ? textures->len : 0; i-- > 0;) {
    JfGalleryEntry *r = jf_gallery_entry_new();
    r->texture = g_object_ref(g_ptr_array_index(textures, i));
    r->has_params = TRUE;
    r->prompt = g_strdup(p->run_prompt);
    r->steps = p->planned_steps;
    r->cfg = p->last_cfg;
    r->seed = p->run_seed;
    r->index = (int)i;
    r->steering = p->steering->len ? g_strdup(p->steering->str) : NULL;
    jf_gallery_entry_make_thumb(r);

    SaveData *d = g_new0(SaveData, 1);
    d->dir = g_strdup(dir);
    d->entry = jf_gallery_entry_copy(r);
    p->n_saving++;
    GTask *task = g_task_new(p, NULL, gallery_save_done, NULL);
    g_task_set_task_data(task, d, (GDestroyNotify)save_data_free);
    g_task_run_in_thread(task, gallery_save_thread);
    g_object_unref(task);

    if (i == 0)
      set_current(p, jf_gallery_entry_copy(r));
    jf_gallery_strip_prepend(p->gallery, r);
  }
  g_autofree char *text = g_strdup_printf("%d steps in %.1f s · CFG %.1f · seed %" G_GUINT64_FORMAT "%s", p->done_steps,
                                          p->wall_ms_sum / 1000.0, p->last_cfg, p->run_seed,
                                          p->steering->len ? " · steered" : "");
  gtk_label_set_text(GTK_LABEL(p->result_label), text);
  gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress_bar), 1.0);
  hide_status(p);
}

/* --- steering -------------------------------------------------------------------------------- */

static void on_cfg_changed(GtkAdjustment *adj, JfCanvasPane *p)
{
  double v = gtk_adjustment_get_value(adj);
  g_autofree char *text = g_strdup_printf("%.1f", v);
  gtk_label_set_text(GTK_LABEL(p->cfg_value_label), text);
  if (p->job)
    jf_engine_set_cfg(p->engine, (float)v);
}

static void on_steps_changed(GtkAdjustment *adj, JfCanvasPane *p)
{
  if (p->job)
    jf_engine_set_steps(p->engine, (int)gtk_adjustment_get_value(adj));
}

static void on_seed_lock_toggled(GtkToggleButton *b, JfCanvasPane *p)
{
  gboolean locked = gtk_toggle_button_get_active(b);
  gtk_button_set_icon_name(GTK_BUTTON(b), locked ? "changes-prevent-symbolic" : "changes-allow-symbolic");
  gtk_widget_set_tooltip_text(GTK_WIDGET(b), locked ? "This seed is kept for every run (click for a new random seed each time)"
                                                    : "Every run picks a new random seed (click to keep this one)");
  if (p->settings)
    p->settings->seed_locked = locked;
}

/* --- results: recall, open, save, copy ------------------------------------------------------- */

static void read_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  GError *error = NULL;
  JfGalleryEntry *e = jf_gallery_read(data, &error);
  if (e)
    g_task_return_pointer(task, e, (GDestroyNotify)jf_gallery_entry_free);
  else
    g_task_return_error(task, error);
}

static void apply_params(JfCanvasPane *p, const JfGalleryEntry *e)
{
  if (!e->has_params)
    return;
  jf_canvas_pane_set_prompt(p, e->prompt);
  if (!p->job) {
    gtk_adjustment_set_value(p->steps_adj, e->steps);
    gtk_adjustment_set_value(p->cfg_adj, e->cfg);
    gtk_adjustment_set_value(p->seed_adj, (double)e->seed);
    gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(p->seed_lock), TRUE);
  }
}

static void open_done(GObject *source, GAsyncResult *res, gpointer user)
{
  gboolean from_gallery = GPOINTER_TO_INT(user);
  GError *error = NULL;
  JfGalleryEntry *e = g_task_propagate_pointer(G_TASK(res), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(error);
    return;
  }
  JfCanvasPane *p = JF_CANVAS_PANE(source);
  if (!e) {
    g_autofree char *msg = g_strdup_printf("Could not open the image: %s", error->message);
    toast(p, msg);
    g_error_free(error);
    return;
  }
  if (p->job)  /* a run started meanwhile: its previews own the canvas */
  {
    jf_gallery_entry_free(e);
    return;
  }
  if (!from_gallery) {
    g_autofree char *base = g_path_get_basename(e->path);
    g_autofree char *msg = e->has_params ? g_strdup_printf("Settings restored from %s", base)
                                         : g_strdup_printf("%s was not made by JanusFlow: no settings to restore", base);
    toast(p, msg);
  }
  apply_params(p, e);
  set_current(p, e);
}

static void read_file_async(JfCanvasPane *p, const char *path, gboolean from_gallery)
{
  GTask *task = g_task_new(p, p->cancel, open_done, GINT_TO_POINTER(from_gallery));
  g_task_set_task_data(task, g_strdup(path), g_free);
  g_task_run_in_thread(task, read_thread);
  g_object_unref(task);
}

void jf_canvas_pane_open_file(JfCanvasPane *p, GFile *file)
{
  g_autofree char *path = g_file_get_path(file);
  if (!path) {
    toast(p, "Only local files can be opened");
    return;
  }
  read_file_async(p, path, FALSE);
}

void jf_canvas_pane_recall(JfCanvasPane *p, const JfGalleryEntry *e)
{
  apply_params(p, e);
  if (p->job)
    return;
  set_current(p, jf_gallery_entry_copy(e));
  /* entries read by a scan hold only a thumbnail: fetch the full image */
  if (!e->texture && e->path)
    read_file_async(p, e->path, TRUE);
}

static void on_gallery_activated(JfGalleryStrip *s, JfGalleryEntry *e, JfCanvasPane *p)
{
  (void)s;
  jf_canvas_pane_recall(p, e);
}

static void on_open_response(GtkNativeDialog *dialog, int response, JfCanvasPane *p)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *file = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    if (file) {
      jf_canvas_pane_open_file(p, file);
      g_object_unref(file);
    }
  }
  g_object_unref(dialog);
}

static GtkWindow *parent_window(JfCanvasPane *p)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(p));
  return GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL;
}

void jf_canvas_pane_open_dialog(JfCanvasPane *p)
{
  GtkFileChooserNative *dlg = gtk_file_chooser_native_new("Open Image", parent_window(p), GTK_FILE_CHOOSER_ACTION_OPEN,
                                                          "_Open", "_Cancel");
  GtkFileFilter *filter = jf_image_file_filter_new();
  gtk_file_chooser_add_filter(GTK_FILE_CHOOSER(dlg), filter);
  g_object_unref(filter);
  g_autofree char *dir = p->settings ? jf_settings_get_save_dir(p->settings) : NULL;
  if (dir && g_file_test(dir, G_FILE_TEST_IS_DIR)) {
    GFile *f = g_file_new_for_path(dir);
    gtk_file_chooser_set_current_folder(GTK_FILE_CHOOSER(dlg), f, NULL);
    g_object_unref(f);
  }
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dlg), TRUE);
  g_signal_connect(dlg, "response", G_CALLBACK(on_open_response), p);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dlg));
}

static void write_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  JfGalleryEntry *e = data;
  GError *error = NULL;
  if (jf_gallery_write(e->path, e, &error))
    g_task_return_boolean(task, TRUE);
  else
    g_task_return_error(task, error);
}

static void write_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  JfCanvasPane *p = JF_CANVAS_PANE(source);
  JfGalleryEntry *e = g_task_get_task_data(G_TASK(res));
  GError *error = NULL;
  g_autofree char *base = g_path_get_basename(e->path);
  g_autofree char *msg = g_task_propagate_boolean(G_TASK(res), &error)
    ? g_strdup_printf("Saved as %s", base)
    : g_strdup_printf("Could not save %s: %s", base, error->message);
  toast(p, msg);
  g_clear_error(&error);
}

static void on_save_response(GtkNativeDialog *dialog, int response, JfCanvasPane *p)
{
  GFile *file = response == GTK_RESPONSE_ACCEPT ? gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog)) : NULL;
  char *path = file ? g_file_get_path(file) : NULL;
  if (path && p->current) {
    JfGalleryEntry *e = jf_gallery_entry_copy(p->current);
    g_free(e->path);
    e->path = g_str_has_suffix(path, ".png") ? g_strdup(path) : g_strconcat(path, ".png", NULL);
    GTask *task = g_task_new(p, NULL, write_done, NULL);
    g_task_set_task_data(task, e, (GDestroyNotify)jf_gallery_entry_free);
    g_task_run_in_thread(task, write_thread);
    g_object_unref(task);
  }
  g_free(path);
  g_clear_object(&file);
  g_object_unref(dialog);
}

void jf_canvas_pane_save_dialog(JfCanvasPane *p)
{
  if (!p->current || !p->current->texture)
    return;
  GtkFileChooserNative *dlg = gtk_file_chooser_native_new("Save Image", parent_window(p), GTK_FILE_CHOOSER_ACTION_SAVE,
                                                          "_Save", "_Cancel");
  g_autofree char *name = p->current->path ? g_path_get_basename(p->current->path) : g_strdup("janusflow.png");
  gtk_file_chooser_set_current_name(GTK_FILE_CHOOSER(dlg), name);
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dlg), TRUE);
  g_signal_connect(dlg, "response", G_CALLBACK(on_save_response), p);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dlg));
}

gboolean jf_canvas_pane_copy_image(JfCanvasPane *p)
{
  GdkTexture *t = jf_canvas_pane_get_image(p);
  if (!t)
    return FALSE;
  gdk_clipboard_set_texture(gtk_widget_get_clipboard(GTK_WIDGET(p)), t);
  toast(p, "Image copied");
  return TRUE;
}

static gboolean on_drop(GtkDropTarget *target, const GValue *value, double x, double y, JfCanvasPane *p)
{
  (void)target;
  (void)x;
  (void)y;
  gtk_widget_remove_css_class(p->canvas_overlay, "drop-active");
  GSList *files = g_value_get_boxed(value);
  if (!files)
    return FALSE;
  jf_canvas_pane_open_file(p, files->data);
  return TRUE;
}

static GdkDragAction on_drop_enter(GtkDropTarget *t, double x, double y, JfCanvasPane *p)
{
  (void)t;
  (void)x;
  (void)y;
  gtk_widget_add_css_class(p->canvas_overlay, "drop-active");
  return GDK_ACTION_COPY;
}

static void on_drop_leave(GtkDropTarget *t, JfCanvasPane *p)
{
  (void)t;
  gtk_widget_remove_css_class(p->canvas_overlay, "drop-active");
}

/* --- setup ----------------------------------------------------------------------------------- */

void jf_canvas_pane_apply_settings(JfCanvasPane *p)
{
  JfSettings *s = p->settings;
  if (!s || p->job)
    return;
  gtk_adjustment_set_value(p->steps_adj, s->steps);
  gtk_adjustment_set_value(p->cfg_adj, s->cfg);
  gtk_adjustment_set_value(p->batch_adj, s->batch);
  gtk_adjustment_set_value(p->seed_adj, (double)(s->seed & 0xffffffffu));
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(p->seed_lock), s->seed_locked);
}

void jf_canvas_pane_setup(JfCanvasPane *p, JfEngine *engine, JfSettings *settings)
{
  g_return_if_fail(JF_IS_CANVAS_PANE(p) && JF_IS_ENGINE(engine) && settings);
  g_set_object(&p->engine, engine);
  p->settings = settings;
  g_signal_connect_object(engine, "gen-step", G_CALLBACK(on_gen_step), p, 0);
  g_signal_connect_object(engine, "gen-finished", G_CALLBACK(on_gen_finished), p, 0);
  jf_canvas_pane_apply_settings(p);
  g_autofree char *dir = jf_settings_get_save_dir(settings);
  jf_gallery_strip_load(p->gallery, dir);
}

static gboolean on_prompt_key(GtkEventControllerKey *c, guint keyval, guint keycode, GdkModifierType state,
                              JfCanvasPane *p)
{
  (void)c;
  (void)keycode;
  /* Enter generates; Shift+Enter is a new line (Ctrl+Enter is the window's shortcut) */
  if ((keyval == GDK_KEY_Return || keyval == GDK_KEY_KP_Enter) && !(state & (GDK_SHIFT_MASK | GDK_CONTROL_MASK))) {
    jf_canvas_pane_generate(p);
    return TRUE;
  }
  return FALSE;
}

static void on_generate_clicked(GtkButton *b, JfCanvasPane *p)
{
  (void)b;
  jf_canvas_pane_generate(p);
}

static void on_stop_clicked(GtkButton *b, JfCanvasPane *p)
{
  (void)b;
  jf_canvas_pane_stop(p);
}

static void jf_canvas_pane_dispose(GObject *obj)
{
  JfCanvasPane *p = JF_CANVAS_PANE(obj);
  g_cancellable_cancel(p->cancel);
  if (p->job && p->engine)
    jf_engine_cancel(p->engine, p->job);
  p->job = 0;
  g_clear_object(&p->engine);
  gtk_widget_dispose_template(GTK_WIDGET(p), JF_TYPE_CANVAS_PANE);
  G_OBJECT_CLASS(jf_canvas_pane_parent_class)->dispose(obj);
}

static void jf_canvas_pane_finalize(GObject *obj)
{
  JfCanvasPane *p = JF_CANVAS_PANE(obj);
  g_clear_object(&p->cancel);
  g_free(p->run_prompt);
  g_string_free(p->steering, TRUE);
  jf_gallery_entry_free(p->current);
  G_OBJECT_CLASS(jf_canvas_pane_parent_class)->finalize(obj);
}

static void jf_canvas_pane_get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec)
{
  JfCanvasPane *p = JF_CANVAS_PANE(obj);
  switch (id) {
  case PROP_BUSY: g_value_set_boolean(value, p->job != 0); break;
  case PROP_HAS_IMAGE: g_value_set_boolean(value, jf_canvas_pane_get_image(p) != NULL); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void jf_canvas_pane_class_init(JfCanvasPaneClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_canvas_pane_dispose;
  oc->finalize = jf_canvas_pane_finalize;
  oc->get_property = jf_canvas_pane_get_property;
  props[PROP_BUSY] = g_param_spec_boolean("busy", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  props[PROP_HAS_IMAGE] = g_param_spec_boolean("has-image", NULL, NULL, FALSE, G_PARAM_READABLE | G_PARAM_STATIC_STRINGS);
  g_object_class_install_properties(oc, N_PROPS, props);

  g_type_ensure(JF_TYPE_CANVAS_VIEW);
  g_type_ensure(JF_TYPE_GALLERY_STRIP);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-canvas-pane.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, JfCanvasPane, name)
  BIND(prompt_view);
  BIND(run_stack);
  BIND(generate_button);
  BIND(stop_button);
  BIND(cfg_scale);
  BIND(cfg_value_label);
  BIND(steps_spin);
  BIND(seed_spin);
  BIND(seed_lock);
  BIND(batch_spin);
  BIND(cfg_adj);
  BIND(steps_adj);
  BIND(seed_adj);
  BIND(batch_adj);
  BIND(canvas_overlay);
  BIND(empty_box);
  BIND(bottom_stack);
  BIND(result_label);
  BIND(status_label);
  BIND(progress_bar);
  BIND(actions_box);
  BIND(save_button);
  BIND(copy_button);
  BIND(ask_button);
  BIND(canvas_view);
  BIND(gallery);
#undef BIND
  gtk_widget_class_set_css_name(wc, "canvaspane");
}

static void jf_canvas_pane_init(JfCanvasPane *p)
{
  gtk_widget_init_template(GTK_WIDGET(p));
  p->cancel = g_cancellable_new();
  p->steering = g_string_new(NULL);
  g_signal_connect(p->generate_button, "clicked", G_CALLBACK(on_generate_clicked), p);
  g_signal_connect(p->stop_button, "clicked", G_CALLBACK(on_stop_clicked), p);
  g_signal_connect(p->cfg_adj, "value-changed", G_CALLBACK(on_cfg_changed), p);
  g_signal_connect(p->steps_adj, "value-changed", G_CALLBACK(on_steps_changed), p);
  g_signal_connect(p->seed_lock, "toggled", G_CALLBACK(on_seed_lock_toggled), p);
  g_signal_connect(p->gallery, "activated", G_CALLBACK(on_gallery_activated), p);
  GtkEventController *keys = gtk_event_controller_key_new();
  gtk_event_controller_set_propagation_phase(keys, GTK_PHASE_CAPTURE);
  g_signal_connect(keys, "key-pressed", G_CALLBACK(on_prompt_key), p);
  gtk_widget_add_controller(p->prompt_view, keys);

  GtkDropTarget *drop = gtk_drop_target_new(GDK_TYPE_FILE_LIST, GDK_ACTION_COPY);
  g_signal_connect(drop, "drop", G_CALLBACK(on_drop), p);
  g_signal_connect(drop, "enter", G_CALLBACK(on_drop_enter), p);
  g_signal_connect(drop, "leave", G_CALLBACK(on_drop_leave), p);
  gtk_widget_add_controller(p->canvas_overlay, GTK_EVENT_CONTROLLER(drop));

  on_cfg_changed(p->cfg_adj, p);
  gtk_widget_set_sensitive(p->actions_box, FALSE);
  update_empty(p);
}
