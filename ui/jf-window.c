#include "jf-window.h"
#include <string.h>
#include "vkrt.h"

struct _JfWindow {
  GtkApplicationWindow parent;
  /* template */
  GtkWidget *header, *new_chat_button, *title_stack, *switcher, *menu_button, *memory_label;
  GtkWidget *main_stack, *work_box, *view_stack;
  JfSetupPage *setup_page;
  JfChatPane *chat_pane;
  JfCanvasPane *canvas_pane;
  GtkWidget *toast_revealer, *toast_label, *toast_button, *toast_close;

  JfEngine *engine;
  JfSettings *settings;
  GtkWidget *paned;        /* side by side, else NULL */
  guint toast_timeout;
  char *toast_action;      /* what the toast's button activates, NULL when it has none */
  char *loading_model, *loading_vae;
  gboolean reload_pending;  /* reload the model once the running answer / image is done */
};

G_DEFINE_FINAL_TYPE(JfWindow, jf_window, GTK_TYPE_APPLICATION_WINDOW)

static void enable(JfWindow *w, const char *name, gboolean on)
{
  GAction *a = g_action_map_lookup_action(G_ACTION_MAP(w), name);
  if (a)
    g_simple_action_set_enabled(G_SIMPLE_ACTION(a), on);
}

const char *jf_window_get_page(JfWindow *w)
{
  if (w->paned)
    return "both";
  return gtk_stack_get_visible_child_name(GTK_STACK(w->view_stack));
}

static gboolean on_chat_page(JfWindow *w)
{
  return g_strcmp0(jf_window_get_page(w), "chat") == 0;
}

static gboolean on_create_page(JfWindow *w)
{
  return g_strcmp0(jf_window_get_page(w), "create") == 0;
}

static void update_actions(JfWindow *w)
{
  gboolean loaded = jf_engine_is_loaded(w->engine);
  gboolean working = g_strcmp0(gtk_stack_get_visible_child_name(GTK_STACK(w->main_stack)), "work") == 0;
  gboolean chat_busy = jf_chat_pane_is_busy(w->chat_pane), gen_busy = jf_canvas_pane_is_busy(w->canvas_pane);
  gboolean replaying = jf_chat_pane_is_replaying(w->chat_pane);
  gboolean has_image = jf_canvas_pane_get_image(w->canvas_pane) != NULL;
  enable(w, "run", working && loaded);
  /* Escape must stay free for popovers and dialogs unless there is something to stop */
  enable(w, "stop", working && ((w->paned && (chat_busy || gen_busy)) || (on_chat_page(w) && chat_busy) ||
                                (on_create_page(w) && gen_busy)));
  enable(w, "save-image", working && has_image);
  enable(w, "copy-image", working && has_image);
  enable(w, "ask-about-image", working && has_image);
  enable(w, "open-image", working);
  enable(w, "new-chat", working);
  enable(w, "change-model", !jf_engine_is_loading(w->engine));
  enable(w, "side-by-side", working);
  enable(w, "show-page", working);
  gtk_widget_set_visible(w->new_chat_button, working && (w->paned || on_chat_page(w)));
  /* not shown in the header bar (it has the switcher) but in task switchers, and scripts
   * driving the app (tests/test_ui_launch.c) wait on it */
  const char *title = "JanusFlow";
  if (jf_engine_is_loading(w->engine))
    title = "JanusFlow — Loading";
  else if (!working)
    title = "JanusFlow — Setup";
  /* the engine runs jobs in order and the read-back is queued first (right after a load): a
   * question or image asked for meanwhile waits for it */
  else if (replaying)
    title = "JanusFlow — Restoring Chat";
  else if (gen_busy)
    title = "JanusFlow — Generating";
  else if (chat_busy)
    title = "JanusFlow — Answering";
  gtk_window_set_title(GTK_WINDOW(w), title);
  gtk_stack_set_visible_child_name(GTK_STACK(w->title_stack), working && !w->paned ? "switcher" : "title");
}

/* --- toasts ---------------------------------------------------------------------------------- */

static gboolean hide_toast(gpointer data)
{
  JfWindow *w = data;
  w->toast_timeout = 0;
  gtk_revealer_set_reveal_child(GTK_REVEALER(w->toast_revealer), FALSE);
  return G_SOURCE_REMOVE;
}

void jf_window_show_toast_action(JfWindow *w, const char *message, const char *button_label, const char *action)
{
  gtk_label_set_text(GTK_LABEL(w->toast_label), message);
  gboolean has_button = button_label && action;
  gtk_widget_set_visible(w->toast_button, has_button);
  g_free(w->toast_action);
  w->toast_action = has_button ? g_strdup(action) : NULL;
  if (has_button)
    gtk_button_set_label(GTK_BUTTON(w->toast_button), button_label);
  gtk_revealer_set_reveal_child(GTK_REVEALER(w->toast_revealer), TRUE);
  if (w->toast_timeout)
    g_source_remove(w->toast_timeout);
  /* long enough to read a sentence, longer for long messages; an offer stays longer, so there
   * is time to reach the button */
  guint secs = 4 + (guint)MIN(strlen(message) / 40, 6) + (has_button ? 6 : 0);
  w->toast_timeout = g_timeout_add_seconds(secs, hide_toast, w);
}

void jf_window_show_toast(JfWindow *w, const char *message)
{
  jf_window_show_toast_action(w, message, NULL, NULL);
}

const char *jf_window_get_toast_action(JfWindow *w)
{
  return jf_window_get_toast(w) ? w->toast_action : NULL;
}

const char *jf_window_get_toast(JfWindow *w)
{
  return gtk_revealer_get_reveal_child(GTK_REVEALER(w->toast_revealer)) ? gtk_label_get_text(GTK_LABEL(w->toast_label))
                                                                          : NULL;
}

static void on_toast_close(GtkButton *b, JfWindow *w)
{
  (void)b;
  if (w->toast_timeout) {
    g_source_remove(w->toast_timeout);
    w->toast_timeout = 0;
  }
  gtk_revealer_set_reveal_child(GTK_REVEALER(w->toast_revealer), FALSE);
}

/* The offer is taken: the toast goes first, so that what the action says (a toast of its own)
 * stays. */
static void on_toast_button(GtkButton *b, JfWindow *w)
{
  g_autofree char *action = g_steal_pointer(&w->toast_action);
  on_toast_close(b, w);
  if (action)
    gtk_widget_activate_action(GTK_WIDGET(w), action, NULL);
}

/* --- model loading --------------------------------------------------------------------------- */

static void update_memory(JfWindow *w)
{
  guint64 bytes = jf_engine_get_memory(w->engine);
  gtk_widget_set_visible(w->memory_label, bytes > 0);
  g_autofree char *size = g_format_size(bytes);
  gtk_label_set_text(GTK_LABEL(w->memory_label), size);
  const char *weights = jf_engine_get_weights(w->engine) == JF_WEIGHTS_Q8_0 ? " (8-bit language model weights)" : "";
  g_autofree char *tip = jf_engine_get_device_name(w->engine)
    ? g_strdup_printf("GPU memory used by the model on %s%s", jf_engine_get_device_name(w->engine), weights)
    : g_strdup_printf("GPU memory used by the model%s", weights);
  gtk_widget_set_tooltip_text(w->memory_label, tip);
}

static void on_memory(GObject *o, GParamSpec *pspec, JfWindow *w)
{
  (void)o;
  (void)pspec;
  update_memory(w);
}

void jf_window_open_model(JfWindow *w, const char *model_dir, const char *vae_dir)
{
  gtk_stack_set_visible_child_name(GTK_STACK(w->main_stack), "setup");
  if (!model_dir) {
    jf_setup_page_set_folders(w->setup_page, w->settings->model_dir, w->settings->vae_dir);
    jf_setup_page_guess_folders(w->setup_page);
    update_actions(w);
    return;
  }
  jf_setup_page_set_folders(w->setup_page, model_dir, vae_dir);
  jf_setup_page_set_loading(w->setup_page, TRUE);
  g_free(w->loading_model);
  g_free(w->loading_vae);
  w->loading_model = g_strdup(model_dir);
  w->loading_vae = g_strdup(vae_dir);
  w->reload_pending = FALSE;
  jf_engine_load(w->engine, model_dir, vae_dir, w->settings->device, w->settings->weights);
  update_actions(w);
}

static gboolean work_running(JfWindow *w)
{
  return jf_chat_pane_is_busy(w->chat_pane) || jf_canvas_pane_is_busy(w->canvas_pane);
}

void jf_window_reload_model(JfWindow *w)
{
  if (!w->settings->model_dir || jf_engine_is_loading(w->engine))
    return;
  /* a reload would hide the answer or image being made (the load itself would wait for it in
   * the engine's queue): do it when that is done rather than stop it unasked */
  if (work_running(w)) {
    w->reload_pending = TRUE;
    jf_window_show_toast(w, "The model will be reloaded when the current work is done");
    return;
  }
  jf_window_open_model(w, w->settings->model_dir, w->settings->vae_dir);
}

gboolean jf_window_is_reload_pending(JfWindow *w)
{
  return w->reload_pending;
}

static const char *weights_words(JfWeightFormat wf)
{
  return wf == JF_WEIGHTS_Q8_0 ? "8-bit" : "full-precision";
}

void jf_window_offer_reload(JfWindow *w)
{
  JfEngine *e = w->engine;
  if (!jf_engine_is_loaded(e) || jf_engine_is_loading(e) || w->reload_pending ||
      jf_engine_get_weights(e) == w->settings->weights)
    return;
  g_autofree char *msg = g_strdup_printf("The model still runs with %s weights. Reload it to use %s weights.",
                                         weights_words(jf_engine_get_weights(e)), weights_words(w->settings->weights));
  jf_window_show_toast_action(w, msg, "_Reload", "app.reload-model");
}

static void on_load_requested(JfSetupPage *page, const char *model_dir, const char *vae_dir, JfWindow *w)
{
  (void)page;
  jf_window_open_model(w, model_dir, vae_dir);
}

static void on_load_progress(JfEngine *e, double fraction, const char *what, JfWindow *w)
{
  (void)e;
  jf_setup_page_set_progress(w->setup_page, fraction, what);
}

/* The loader's message with its command-line hints put in the window's terms: the device list
 * is in Preferences, and --weights is the button of the 8-bit offer. */
static char *load_error_text(const char *message)
{
  GString *s = g_string_new(message);
  g_string_replace(s, " (janusflow info lists them)", " (Preferences, Device)", 0);
  const char *cli_hint = " or --weights q8_0";
  if (g_str_has_suffix(s->str, cli_hint))
    g_string_truncate(s, s->len - strlen(cli_hint));
  return g_string_free(s, FALSE);
}

/* Too little GPU memory with full-precision weights: 8-bit ones may fit, offer them. */
static void show_load_error(JfWindow *w, const GError *error)
{
  g_autofree char *msg = load_error_text(error->message);
  /* no offer when 8-bit weights would not fit either */
  if (!g_error_matches(error, VKRT_ERROR, VKRT_ERROR_OOM) || jf_engine_get_weights(w->engine) != JF_WEIGHTS_BF16 ||
      !jf_engine_get_q8_fits(w->engine)) {
    jf_setup_page_set_error(w->setup_page, msg);
    return;
  }
  const char *stop = g_str_has_suffix(msg, ".") ? "" : ".";
  guint64 saving = jf_engine_get_q8_saving(w->engine);
  g_autofree char *size = g_format_size(saving);
  g_autofree char *text =
    saving ? g_strdup_printf("%s%s\n\nWith 8-bit language model weights the model needs %s less memory, and its "
                             "answers and images are very slightly less exact.", msg, stop, size)
           : g_strdup_printf("%s%s\n\nWith 8-bit language model weights the model needs less memory, and its "
                             "answers and images are very slightly less exact.", msg, stop);
  jf_setup_page_set_error(w->setup_page, text);
  jf_setup_page_set_error_action(w->setup_page, "Load with _8-bit Weights", "win.load-8bit");
}

static void on_load_finished(JfEngine *e, GError *error, JfWindow *w)
{
  jf_setup_page_set_loading(w->setup_page, FALSE);
  if (error) {
    show_load_error(w, error);
    update_actions(w);
    return;
  }
  /* remember the choice for the next start */
  g_free(w->settings->model_dir);
  g_free(w->settings->vae_dir);
  w->settings->model_dir = g_strdup(w->loading_model);
  w->settings->vae_dir = g_strdup(w->loading_vae);
  GError *err = NULL;
  if (!jf_settings_save(w->settings, &err)) {
    g_autofree char *msg = g_strdup_printf("The settings could not be saved: %s", err->message);
    jf_window_show_toast(w, msg);
    g_error_free(err);
  }
  gtk_stack_set_visible_child_name(GTK_STACK(w->main_stack), "work");
  update_memory(w);  /* its tooltip names the weight format */
  if (!jf_engine_can_generate(e))
    jf_window_show_toast(w, "Model loaded. Choose a VAE folder (Change Model…) to make images.");
  update_actions(w);
  if (on_chat_page(w))
    jf_chat_pane_focus_input(w->chat_pane);
  else
    jf_canvas_pane_focus_prompt(w->canvas_pane);
}

/* --- actions --------------------------------------------------------------------------------- */

static void act_run(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(w));
  /* side by side: the pane holding the focus */
  gboolean chat = w->paned ? (focus && gtk_widget_is_ancestor(focus, GTK_WIDGET(w->chat_pane))) : on_chat_page(w);
  if (chat)
    jf_chat_pane_send(w->chat_pane);
  else
    jf_canvas_pane_generate(w->canvas_pane);
}

static void act_stop(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  if (w->paned || on_chat_page(w))
    jf_chat_pane_stop(w->chat_pane);
  if (w->paned || on_create_page(w))
    jf_canvas_pane_stop(w->canvas_pane);
}

static void act_save_image(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  jf_canvas_pane_save_dialog(JF_WINDOW(data)->canvas_pane);
}

static gboolean is_text_widget(GtkWidget *w)
{
  return w && (GTK_IS_TEXT_VIEW(w) || GTK_IS_TEXT(w) || (GTK_IS_LABEL(w) && gtk_label_get_selectable(GTK_LABEL(w))));
}

static void act_copy_image(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  /* Ctrl+C in a text field copies text, as everywhere else */
  GtkWidget *focus = gtk_root_get_focus(GTK_ROOT(w));
  if (is_text_widget(focus)) {
    gboolean has_sel = TRUE;
    if (GTK_IS_TEXT_VIEW(focus))
      has_sel = gtk_text_buffer_get_has_selection(gtk_text_view_get_buffer(GTK_TEXT_VIEW(focus)));
    else if (GTK_IS_TEXT(focus))
      has_sel = gtk_editable_get_selection_bounds(GTK_EDITABLE(focus), NULL, NULL);
    else if (GTK_IS_LABEL(focus))
      has_sel = gtk_label_get_selection_bounds(GTK_LABEL(focus), NULL, NULL);
    if (has_sel) {
      gtk_widget_activate_action(focus, "clipboard.copy", NULL);
      return;
    }
  }
  jf_canvas_pane_copy_image(w->canvas_pane);
}

static void act_open_image(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  if (on_create_page(w))
    jf_canvas_pane_open_dialog(w->canvas_pane);
  else
    jf_chat_pane_open_attach_dialog(w->chat_pane);
}

static void act_ask_about_image(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  GdkTexture *t = jf_canvas_pane_get_image(w->canvas_pane);
  if (!t)
    return;
  jf_chat_pane_attach_texture(w->chat_pane, t);
  if (!w->paned)
    jf_window_show_page(w, "chat");
  jf_chat_pane_focus_input(w->chat_pane);
}

static void act_new_chat(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  jf_chat_pane_new_chat(w->chat_pane);
  if (!w->paned)
    jf_window_show_page(w, "chat");
}

static void act_change_model(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  jf_chat_pane_stop(w->chat_pane);
  jf_canvas_pane_stop(w->canvas_pane);
  jf_window_open_model(w, NULL, NULL);
}

/* From the setup page after the model did not fit: remember the choice and try again. */
static void act_load_8bit(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfWindow *w = data;
  const char *model = jf_setup_page_get_model_dir(w->setup_page), *vae = jf_setup_page_get_vae_dir(w->setup_page);
  if (!model || jf_engine_is_loading(w->engine))
    return;
  w->settings->weights = JF_WEIGHTS_Q8_0;
  GError *error = NULL;
  if (!jf_settings_save(w->settings, &error)) {
    g_warning("settings: %s", error->message);
    g_error_free(error);
  }
  g_autofree char *m = g_strdup(model), *v = g_strdup(vae);
  jf_window_open_model(w, m, v);
}

static void act_toast(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  jf_window_show_toast(data, g_variant_get_string(p, NULL));
}

static void act_show_page(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  jf_window_show_page(data, g_variant_get_string(p, NULL));
}

static void set_side_by_side(JfWindow *w, gboolean on);

static void act_side_by_side(GSimpleAction *a, GVariant *value, gpointer data)
{
  g_simple_action_set_state(a, value);
  set_side_by_side(data, g_variant_get_boolean(value));
}

static const GActionEntry win_actions[] = {
  { "run", act_run, NULL, NULL, NULL, { 0 } },
  { "stop", act_stop, NULL, NULL, NULL, { 0 } },
  { "save-image", act_save_image, NULL, NULL, NULL, { 0 } },
  { "copy-image", act_copy_image, NULL, NULL, NULL, { 0 } },
  { "open-image", act_open_image, NULL, NULL, NULL, { 0 } },
  { "ask-about-image", act_ask_about_image, NULL, NULL, NULL, { 0 } },
  { "new-chat", act_new_chat, NULL, NULL, NULL, { 0 } },
  { "change-model", act_change_model, NULL, NULL, NULL, { 0 } },
  { "load-8bit", act_load_8bit, NULL, NULL, NULL, { 0 } },
  { "toast", act_toast, "s", NULL, NULL, { 0 } },
  { "show-page", act_show_page, "s", NULL, NULL, { 0 } },
  { "side-by-side", NULL, NULL, "false", act_side_by_side, { 0 } },
};

/* --- layout ---------------------------------------------------------------------------------- */

void jf_window_show_page(JfWindow *w, const char *name)
{
  if (w->paned)
    return;
  if (g_strcmp0(name, "chat") == 0) {
    gtk_stack_set_visible_child_name(GTK_STACK(w->view_stack), name);
    jf_chat_pane_focus_input(w->chat_pane);
  } else if (g_strcmp0(name, "create") == 0) {
    gtk_stack_set_visible_child_name(GTK_STACK(w->view_stack), name);
    jf_canvas_pane_focus_prompt(w->canvas_pane);
  }
  update_actions(w);
}

static void add_stack_page(JfWindow *w, GtkWidget *child, const char *name, const char *title)
{
  GtkStackPage *page = gtk_stack_add_titled(GTK_STACK(w->view_stack), child, name, title);
  gtk_stack_page_set_use_underline(page, TRUE);
}

/* Moves the two panes between the stack and a GtkPaned. */
static void set_side_by_side(JfWindow *w, gboolean on)
{
  if (on == (w->paned != NULL))
    return;
  GtkWidget *chat = g_object_ref(GTK_WIDGET(w->chat_pane)), *canvas = g_object_ref(GTK_WIDGET(w->canvas_pane));
  if (on) {
    gtk_stack_remove(GTK_STACK(w->view_stack), chat);
    gtk_stack_remove(GTK_STACK(w->view_stack), canvas);
    gtk_widget_set_visible(w->view_stack, FALSE);
    w->paned = gtk_paned_new(GTK_ORIENTATION_HORIZONTAL);
    gtk_widget_set_hexpand(w->paned, TRUE);
    gtk_paned_set_start_child(GTK_PANED(w->paned), chat);
    gtk_paned_set_end_child(GTK_PANED(w->paned), canvas);
    gtk_paned_set_shrink_start_child(GTK_PANED(w->paned), FALSE);
    gtk_paned_set_shrink_end_child(GTK_PANED(w->paned), FALSE);
    gtk_paned_set_position(GTK_PANED(w->paned), gtk_widget_get_width(GTK_WIDGET(w)) * 2 / 5);
    gtk_box_append(GTK_BOX(w->work_box), w->paned);
  } else {
    gtk_paned_set_start_child(GTK_PANED(w->paned), NULL);
    gtk_paned_set_end_child(GTK_PANED(w->paned), NULL);
    gtk_box_remove(GTK_BOX(w->work_box), w->paned);
    w->paned = NULL;
    add_stack_page(w, chat, "chat", "_Chat");
    add_stack_page(w, canvas, "create", "C_reate");
    gtk_widget_set_visible(w->view_stack, TRUE);
  }
  g_object_unref(chat);
  g_object_unref(canvas);
  update_actions(w);
}

static void on_state_changed(GObject *o, GParamSpec *pspec, JfWindow *w)
{
  (void)o;
  (void)pspec;
  update_actions(w);
  if (w->reload_pending && !work_running(w) && !jf_engine_is_loading(w->engine)) {
    w->reload_pending = FALSE;
    jf_window_reload_model(w);
  }
}

/* --- lifetime -------------------------------------------------------------------------------- */

static gboolean on_close_request(GtkWindow *win, gpointer user)
{
  (void)user;
  JfWindow *w = JF_WINDOW(win);
  /* stop what runs and wait for the worker: nothing may touch the GPU after this. A model
   * load cannot be interrupted (model_load takes no GCancellable): hide the window first so
   * closing feels immediate even then. */
  gtk_widget_set_visible(GTK_WIDGET(w), FALSE);
  jf_engine_shutdown(w->engine);
  jf_chat_pane_flush(w->chat_pane);
  GError *error = NULL;
  if (!jf_settings_save(w->settings, &error)) {
    g_warning("settings: %s", error->message);
    g_error_free(error);
  }
  return FALSE;
}

static void jf_window_dispose(GObject *obj)
{
  JfWindow *w = JF_WINDOW(obj);
  if (w->toast_timeout) {
    g_source_remove(w->toast_timeout);
    w->toast_timeout = 0;
  }
  g_clear_object(&w->engine);
  G_OBJECT_CLASS(jf_window_parent_class)->dispose(obj);
}

static void jf_window_finalize(GObject *obj)
{
  JfWindow *w = JF_WINDOW(obj);
  g_free(w->loading_model);
  g_free(w->loading_vae);
  g_free(w->toast_action);
  G_OBJECT_CLASS(jf_window_parent_class)->finalize(obj);
}

static void jf_window_class_init(JfWindowClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_window_dispose;
  oc->finalize = jf_window_finalize;
  g_type_ensure(JF_TYPE_SETUP_PAGE);
  g_type_ensure(JF_TYPE_CHAT_PANE);
  g_type_ensure(JF_TYPE_CANVAS_PANE);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-window.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, JfWindow, name)
  BIND(header);
  BIND(new_chat_button);
  BIND(title_stack);
  BIND(switcher);
  BIND(menu_button);
  BIND(memory_label);
  BIND(main_stack);
  BIND(work_box);
  BIND(view_stack);
  BIND(setup_page);
  BIND(chat_pane);
  BIND(canvas_pane);
  BIND(toast_revealer);
  BIND(toast_label);
  BIND(toast_button);
  BIND(toast_close);
#undef BIND
}

static void jf_window_init(JfWindow *w)
{
  gtk_widget_init_template(GTK_WIDGET(w));
  g_action_map_add_action_entries(G_ACTION_MAP(w), win_actions, G_N_ELEMENTS(win_actions), w);
  g_signal_connect(w->setup_page, "load-requested", G_CALLBACK(on_load_requested), w);
  g_signal_connect(w->toast_close, "clicked", G_CALLBACK(on_toast_close), w);
  g_signal_connect(w->toast_button, "clicked", G_CALLBACK(on_toast_button), w);
  g_signal_connect(w->chat_pane, "notify::replaying", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w->chat_pane, "notify::busy", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w->canvas_pane, "notify::busy", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w->canvas_pane, "notify::has-image", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w->view_stack, "notify::visible-child", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w->main_stack, "notify::visible-child", G_CALLBACK(on_state_changed), w);
  g_signal_connect(w, "close-request", G_CALLBACK(on_close_request), NULL);
}

JfWindow *jf_window_new(GtkApplication *app, JfEngine *engine, JfSettings *settings)
{
  JfWindow *w = g_object_new(JF_TYPE_WINDOW, "application", app, NULL);
  w->engine = g_object_ref(engine);
  w->settings = settings;
  g_signal_connect_object(engine, "load-progress", G_CALLBACK(on_load_progress), w, 0);
  g_signal_connect_object(engine, "load-finished", G_CALLBACK(on_load_finished), w, 0);
  g_signal_connect_object(engine, "notify::memory", G_CALLBACK(on_memory), w, 0);
  g_signal_connect_object(engine, "notify::loading", G_CALLBACK(on_state_changed), w, 0);
  jf_chat_pane_setup(w->chat_pane, engine, settings, NULL);
  jf_canvas_pane_setup(w->canvas_pane, engine, settings);
  update_actions(w);
  return w;
}

JfChatPane *jf_window_get_chat_pane(JfWindow *w) { return w->chat_pane; }
JfCanvasPane *jf_window_get_canvas_pane(JfWindow *w) { return w->canvas_pane; }
JfSetupPage *jf_window_get_setup_page(JfWindow *w) { return w->setup_page; }
JfEngine *jf_window_get_engine(JfWindow *w) { return w->engine; }
