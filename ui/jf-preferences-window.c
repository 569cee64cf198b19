#include "jf-preferences-window.h"
#include "vkrt.h"

struct _JfPreferencesWindow {
  GtkWindow parent;
  GtkWidget *device_dropdown, *device_note, *weights_dropdown, *weights_note, *memory_label, *reload_button;
  GtkStringList *device_list;
  GtkWidget *steps_spin, *cfg_spin, *seed_switch, *preview_dropdown, *every_row, *every_spin;
  GtkAdjustment *steps_adj, *cfg_adj, *every_adj;
  GtkWidget *save_dir_label, *save_dir_button;
  JfSettings *settings;
  JfEngine *engine;
  GPtrArray *device_selectors;   /* char*: what settings->device gets for each dropdown item */
  GCancellable *cancel;
  gboolean filling;
};

enum { SIG_CHANGED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(JfPreferencesWindow, jf_preferences_window, GTK_TYPE_WINDOW)

static void update_save_dir(JfPreferencesWindow *w)
{
  g_autofree char *dir = jf_settings_get_save_dir(w->settings);
  gtk_label_set_text(GTK_LABEL(w->save_dir_label), dir);
  gtk_widget_set_tooltip_text(w->save_dir_label, dir);
}

static void update_memory(JfPreferencesWindow *w)
{
  if (!w->engine || !jf_engine_is_loaded(w->engine)) {
    gtk_label_set_text(GTK_LABEL(w->memory_label), "No model loaded");
    return;
  }
  g_autofree char *mem = g_format_size(jf_engine_get_memory(w->engine));
  g_autofree char *text = g_strdup_printf("Running on %s, using %s of its memory",
                                          jf_engine_get_device_name(w->engine), mem);
  gtk_label_set_text(GTK_LABEL(w->memory_label), text);
}

/* What 8-bit weights give and cost, and whether the loaded model still has to be reloaded for
 * the choice to apply (then the Reload button is the suggested action). */
static void update_weights_note(JfPreferencesWindow *w)
{
  gboolean loaded = w->engine && jf_engine_is_loaded(w->engine) && !jf_engine_is_loading(w->engine);
  g_autofree char *text = NULL;
  gboolean stale = loaded && jf_engine_get_weights(w->engine) != w->settings->weights;
  if (stale) {
    text = g_strdup_printf("The model is loaded with %s weights: reload it to apply this",
                           jf_engine_get_weights(w->engine) == JF_WEIGHTS_Q8_0 ? "8-bit" : "full-precision");
  } else if (loaded && jf_engine_get_q8_saving(w->engine) > 0) {
    g_autofree char *size = g_format_size(jf_engine_get_q8_saving(w->engine));
    text = g_strdup_printf("8-bit weights take %s less GPU memory with this model; answers and images are very "
                           "slightly less exact",
                           size);
  } else {
    text = g_strdup("8-bit weights take less GPU memory; answers and images are very slightly less exact");
  }
  gtk_label_set_text(GTK_LABEL(w->weights_note), text);
  if (stale)
    gtk_widget_add_css_class(w->reload_button, "suggested-action");
  else
    gtk_widget_remove_css_class(w->reload_button, "suggested-action");
}

static void on_engine_changed(GObject *o, GParamSpec *pspec, JfPreferencesWindow *w)
{
  (void)o;
  (void)pspec;
  update_memory(w);
  update_weights_note(w);
}

static void on_widget_changed(JfPreferencesWindow *w)
{
  if (w->filling)
    return;
  JfSettings *s = w->settings;
  s->steps = (int)gtk_adjustment_get_value(w->steps_adj);
  s->cfg = gtk_adjustment_get_value(w->cfg_adj);
  s->seed_locked = gtk_switch_get_active(GTK_SWITCH(w->seed_switch));
  s->preview = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->preview_dropdown)) == 1 ? JF_PREVIEW_VAE : JF_PREVIEW_FAST;
  s->preview_every = (int)gtk_adjustment_get_value(w->every_adj);
  s->weights = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->weights_dropdown)) == 1 ? JF_WEIGHTS_Q8_0 : JF_WEIGHTS_BF16;
  guint dev = gtk_drop_down_get_selected(GTK_DROP_DOWN(w->device_dropdown));
  if (dev != GTK_INVALID_LIST_POSITION && dev < w->device_selectors->len) {
    g_free(s->device);
    const char *sel = g_ptr_array_index(w->device_selectors, dev);
    s->device = sel ? g_strdup(sel) : NULL;
  }
  gtk_widget_set_sensitive(w->every_row, s->preview == JF_PREVIEW_VAE);
  update_weights_note(w);
}

static void on_adj_changed(GtkAdjustment *a, JfPreferencesWindow *w)
{
  (void)a;
  on_widget_changed(w);
}

static void on_notify(GObject *o, GParamSpec *pspec, JfPreferencesWindow *w)
{
  (void)o;
  (void)pspec;
  on_widget_changed(w);
}

typedef struct {
  char *name;
  char *selector;
} DeviceItem;

static void device_item_free(DeviceItem *d)
{
  g_free(d->name);
  g_free(d->selector);
  g_free(d);
}

static void devices_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)data;
  (void)cancel;
  GError *error = NULL;
  GArray *devs = vkrt_list_devices(&error);
  if (!devs) {
    g_task_return_error(task, error);
    return;
  }
  GPtrArray *items = g_ptr_array_new_with_free_func((GDestroyNotify)device_item_free);
  for (guint i = 0; i < devs->len; i++) {
    const VkrtDeviceInfo *d = &g_array_index(devs, VkrtDeviceInfo, i);
    if (!d->usable)
      continue;
    DeviceItem *it = g_new0(DeviceItem, 1);
    it->name = g_strdup_printf("%s (%s)", d->name, vkrt_device_type_name(d->type));
    it->selector = g_strdup_printf("%u", d->index);
    g_ptr_array_add(items, it);
  }
  g_array_unref(devs);
  g_task_return_pointer(task, items, (GDestroyNotify)g_ptr_array_unref);
}

static void devices_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  GError *error = NULL;
  GPtrArray *items = g_task_propagate_pointer(G_TASK(res), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(error);
    return;
  }
  JfPreferencesWindow *w = JF_PREFERENCES_WINDOW(source);
  if (!items) {
    g_autofree char *text = g_strdup_printf("No Vulkan device found: %s", error->message);
    gtk_label_set_text(GTK_LABEL(w->device_note), text);
    g_error_free(error);
    return;
  }
  w->filling = TRUE;
  guint selected = 0;
  for (guint i = 0; i < items->len; i++) {
    DeviceItem *it = g_ptr_array_index(items, i);
    gtk_string_list_append(w->device_list, it->name);
    g_ptr_array_add(w->device_selectors, g_strdup(it->selector));
    if (g_strcmp0(w->settings->device, it->selector) == 0)
      selected = i + 1;
  }
  gtk_drop_down_set_selected(GTK_DROP_DOWN(w->device_dropdown), selected);
  w->filling = FALSE;
  g_ptr_array_unref(items);
}

static void on_save_dir_response(GtkNativeDialog *dialog, int response, JfPreferencesWindow *w)
{
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    char *path = f ? g_file_get_path(f) : NULL;
    g_clear_object(&f);
    if (path) {
      g_free(w->settings->save_dir);
      w->settings->save_dir = path;
      update_save_dir(w);
    }
  }
  g_object_unref(dialog);
}

static void on_save_dir_clicked(GtkButton *b, JfPreferencesWindow *w)
{
  (void)b;
  GtkFileChooserNative *dlg = gtk_file_chooser_native_new("Save Images To", GTK_WINDOW(w),
                                                          GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Select", "_Cancel");
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dlg), TRUE);
  g_signal_connect(dlg, "response", G_CALLBACK(on_save_dir_response), w);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dlg));
}

static gboolean on_close_request(GtkWindow *win, gpointer user)
{
  (void)user;
  JfPreferencesWindow *w = JF_PREFERENCES_WINDOW(win);
  GError *error = NULL;
  jf_settings_sanitize(w->settings);
  if (!jf_settings_save(w->settings, &error)) {
    g_warning("preferences: %s", error->message);
    g_error_free(error);
  }
  g_signal_emit(w, signals[SIG_CHANGED], 0);
  return FALSE;
}

static void jf_preferences_window_dispose(GObject *obj)
{
  JfPreferencesWindow *w = JF_PREFERENCES_WINDOW(obj);
  g_cancellable_cancel(w->cancel);
  g_clear_object(&w->engine);
  gtk_widget_dispose_template(GTK_WIDGET(w), JF_TYPE_PREFERENCES_WINDOW);
  G_OBJECT_CLASS(jf_preferences_window_parent_class)->dispose(obj);
}

static void jf_preferences_window_finalize(GObject *obj)
{
  JfPreferencesWindow *w = JF_PREFERENCES_WINDOW(obj);
  g_ptr_array_unref(w->device_selectors);
  g_object_unref(w->cancel);
  G_OBJECT_CLASS(jf_preferences_window_parent_class)->finalize(obj);
}

static void jf_preferences_window_class_init(JfPreferencesWindowClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_preferences_window_dispose;
  oc->finalize = jf_preferences_window_finalize;
  signals[SIG_CHANGED] = g_signal_new("changed", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL, NULL, NULL,
                                      G_TYPE_NONE, 0);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-preferences-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, JfPreferencesWindow, name)
  BIND(device_dropdown);
  BIND(device_note);
  BIND(device_list);
  BIND(weights_dropdown);
  BIND(weights_note);
  BIND(memory_label);
  BIND(reload_button);
  BIND(steps_spin);
  BIND(cfg_spin);
  BIND(seed_switch);
  BIND(preview_dropdown);
  BIND(every_row);
  BIND(every_spin);
  BIND(steps_adj);
  BIND(cfg_adj);
  BIND(every_adj);
  BIND(save_dir_label);
  BIND(save_dir_button);
#undef BIND
  gtk_widget_class_add_binding_action(wc, GDK_KEY_Escape, 0, "window.close", NULL);
}

static void jf_preferences_window_init(JfPreferencesWindow *w)
{
  gtk_widget_init_template(GTK_WIDGET(w));
  w->cancel = g_cancellable_new();
  w->device_selectors = g_ptr_array_new_with_free_func(g_free);
  g_ptr_array_add(w->device_selectors, NULL);  /* "Automatic" */
}

GtkWidget *jf_preferences_window_new(GtkWindow *parent, JfSettings *settings, JfEngine *engine)
{
  JfPreferencesWindow *w = g_object_new(JF_TYPE_PREFERENCES_WINDOW, "transient-for", parent, NULL);
  w->settings = settings;
  w->engine = engine ? g_object_ref(engine) : NULL;
  w->filling = TRUE;
  gtk_adjustment_set_value(w->steps_adj, settings->steps);
  gtk_adjustment_set_value(w->cfg_adj, settings->cfg);
  gtk_switch_set_active(GTK_SWITCH(w->seed_switch), settings->seed_locked);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(w->preview_dropdown), settings->preview == JF_PREVIEW_VAE ? 1 : 0);
  gtk_adjustment_set_value(w->every_adj, settings->preview_every);
  gtk_widget_set_sensitive(w->every_row, settings->preview == JF_PREVIEW_VAE);
  gtk_drop_down_set_selected(GTK_DROP_DOWN(w->weights_dropdown), settings->weights == JF_WEIGHTS_Q8_0 ? 1 : 0);
  w->filling = FALSE;
  update_save_dir(w);
  update_memory(w);
  update_weights_note(w);

  g_signal_connect(w->steps_adj, "value-changed", G_CALLBACK(on_adj_changed), w);
  g_signal_connect(w->cfg_adj, "value-changed", G_CALLBACK(on_adj_changed), w);
  g_signal_connect(w->every_adj, "value-changed", G_CALLBACK(on_adj_changed), w);
  g_signal_connect(w->seed_switch, "notify::active", G_CALLBACK(on_notify), w);
  g_signal_connect(w->preview_dropdown, "notify::selected", G_CALLBACK(on_notify), w);
  g_signal_connect(w->device_dropdown, "notify::selected", G_CALLBACK(on_notify), w);
  g_signal_connect(w->weights_dropdown, "notify::selected", G_CALLBACK(on_notify), w);
  if (engine) {
    /* a reload started from here applies the choice: the notes follow it */
    g_signal_connect_object(engine, "notify::loaded", G_CALLBACK(on_engine_changed), w, 0);
    g_signal_connect_object(engine, "notify::memory", G_CALLBACK(on_engine_changed), w, 0);
  }
  g_signal_connect(w->save_dir_button, "clicked", G_CALLBACK(on_save_dir_clicked), w);
  g_signal_connect(w, "close-request", G_CALLBACK(on_close_request), NULL);

  GTask *task = g_task_new(w, w->cancel, devices_done, NULL);
  g_task_run_in_thread(task, devices_thread);
  g_object_unref(task);
  return GTK_WIDGET(w);
}
