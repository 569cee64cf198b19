#include "jf-setup-page.h"
#include "model.h"
#include <string.h>

struct _JfSetupPage {
  GtkBox parent;
  GtkWidget *title_label, *folders_list, *model_path_label, *vae_path_label, *model_button, *vae_button;
  GtkWidget *status_box, *status_icon, *status_label, *error_button, *action_stack, *load_button, *progress_bar, *progress_label;
  char *model_dir, *vae_dir;
  GCancellable *check_cancel;
  gboolean checking, ready, loading;
};

enum { SIG_LOAD_REQUESTED, N_SIGNALS };
static guint signals[N_SIGNALS];

G_DEFINE_FINAL_TYPE(JfSetupPage, jf_setup_page, GTK_TYPE_BOX)

static void show_status(JfSetupPage *p, const char *icon, const char *text, const char *css)
{
  gtk_widget_set_visible(p->status_box, text != NULL);
  gtk_image_set_from_icon_name(GTK_IMAGE(p->status_icon), icon);
  gtk_label_set_text(GTK_LABEL(p->status_label), text ? text : "");
  /* an offer belongs to the message it came with */
  gtk_widget_set_visible(p->error_button, FALSE);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(p->error_button), NULL);
  const char *classes[] = { "error", "success", "warning", "dim-label" };
  for (size_t i = 0; i < G_N_ELEMENTS(classes); i++)
    gtk_widget_remove_css_class(p->status_box, classes[i]);
  if (css)
    gtk_widget_add_css_class(p->status_box, css);
}

static void update_buttons(JfSetupPage *p)
{
  gtk_widget_set_sensitive(p->load_button, p->ready && !p->checking && !p->loading);
  gtk_widget_set_sensitive(p->model_button, !p->loading);
  gtk_widget_set_sensitive(p->vae_button, !p->loading);
}

typedef struct {
  char *model_dir, *vae_dir;
} CheckData;

static void check_data_free(CheckData *d)
{
  g_free(d->model_dir);
  g_free(d->vae_dir);
  g_free(d);
}

static void check_thread(GTask *task, gpointer source, gpointer data, GCancellable *cancel)
{
  (void)source;
  (void)cancel;
  CheckData *d = data;
  GError *error = NULL;
  /* the model first on its own, so a VAE problem is not blamed on the model and vice versa */
  if (!model_check_folder(d->model_dir, NULL, &error) ||
      (d->vae_dir && !model_check_folder(d->model_dir, d->vae_dir, &error)))
    g_task_return_error(task, error);
  else
    g_task_return_boolean(task, TRUE);
}

static void check_done(GObject *source, GAsyncResult *res, gpointer user)
{
  (void)user;
  GError *error = NULL;
  gboolean ok = g_task_propagate_boolean(G_TASK(res), &error);
  if (g_error_matches(error, G_IO_ERROR, G_IO_ERROR_CANCELLED)) {
    g_error_free(error);
    return;
  }
  JfSetupPage *p = JF_SETUP_PAGE(source);
  p->checking = FALSE;
  p->ready = ok;
  if (!ok) {
    show_status(p, "dialog-error-symbolic", error->message, "error");
    g_error_free(error);
  } else if (!p->vae_dir) {
    show_status(p, "dialog-information-symbolic",
                "The model folder is complete. Without a VAE folder you can chat, but not make images.", "dim-label");
  } else {
    show_status(p, "object-select-symbolic", "Both folders have everything needed.", "success");
  }
  update_buttons(p);
}

static void start_check(JfSetupPage *p)
{
  if (p->check_cancel) {
    g_cancellable_cancel(p->check_cancel);
    g_clear_object(&p->check_cancel);
  }
  p->ready = FALSE;
  if (!p->model_dir) {
    p->checking = FALSE;
    show_status(p, NULL, NULL, NULL);
    update_buttons(p);
    return;
  }
  p->checking = TRUE;
  show_status(p, "content-loading-symbolic", "Checking the folders…", "dim-label");
  update_buttons(p);
  p->check_cancel = g_cancellable_new();
  CheckData *d = g_new0(CheckData, 1);
  d->model_dir = g_strdup(p->model_dir);
  d->vae_dir = g_strdup(p->vae_dir);
  GTask *task = g_task_new(p, p->check_cancel, check_done, NULL);
  g_task_set_return_on_cancel(task, FALSE);
  g_task_set_task_data(task, d, (GDestroyNotify)check_data_free);
  g_task_run_in_thread(task, check_thread);
  g_object_unref(task);
}

static void set_path_label(GtkWidget *label, const char *path, const char *empty)
{
  if (path) {
    g_autofree char *display = g_filename_display_name(path);
    const char *home = g_get_home_dir();
    if (home && g_str_has_prefix(display, home) && display[strlen(home)] == '/') {
      g_autofree char *tilde = g_strconcat("~", display + strlen(home), NULL);
      gtk_label_set_text(GTK_LABEL(label), tilde);
    } else {
      gtk_label_set_text(GTK_LABEL(label), display);
    }
    gtk_widget_set_tooltip_text(label, display);
  } else {
    gtk_label_set_text(GTK_LABEL(label), empty);
    gtk_widget_set_tooltip_text(label, NULL);
  }
}

void jf_setup_page_set_folders(JfSetupPage *p, const char *model_dir, const char *vae_dir)
{
  g_return_if_fail(JF_IS_SETUP_PAGE(p));
  char *m = model_dir && *model_dir ? g_strdup(model_dir) : NULL;
  char *v = vae_dir && *vae_dir ? g_strdup(vae_dir) : NULL;
  g_free(p->model_dir);
  g_free(p->vae_dir);
  p->model_dir = m;
  p->vae_dir = v;
  set_path_label(p->model_path_label, p->model_dir, "No folder chosen");
  set_path_label(p->vae_path_label, p->vae_dir, "No folder chosen (optional: chat works without it)");
  start_check(p);
}

const char *jf_setup_page_get_model_dir(JfSetupPage *p)
{
  return p->model_dir;
}

const char *jf_setup_page_get_vae_dir(JfSetupPage *p)
{
  return p->vae_dir;
}

gboolean jf_setup_page_is_checking(JfSetupPage *p)
{
  return p->checking;
}

gboolean jf_setup_page_is_ready(JfSetupPage *p)
{
  return p->ready;
}

/* Newest snapshot folder of a Hugging Face cache repository, if any. */
static char *hf_snapshot(const char *repo_dir_name, const char *must_have)
{
  const char *hf_home = g_getenv("HF_HOME");
  g_autofree char *hub = hf_home ? g_build_filename(hf_home, "hub", NULL)
                                 : g_build_filename(g_get_user_cache_dir(), "huggingface", "hub", NULL);
  g_autofree char *snaps = g_build_filename(hub, repo_dir_name, "snapshots", NULL);
  GDir *d = g_dir_open(snaps, 0, NULL);
  if (!d)
    return NULL;
  char *found = NULL;
  const char *name;
  while (!found && (name = g_dir_read_name(d))) {
    g_autofree char *cand = g_build_filename(snaps, name, NULL);
    g_autofree char *probe = g_build_filename(cand, must_have, NULL);
    if (g_file_test(probe, G_FILE_TEST_EXISTS))
      found = g_steal_pointer(&cand);
  }
  g_dir_close(d);
  return found;
}

void jf_setup_page_guess_folders(JfSetupPage *p)
{
  g_autofree char *m = p->model_dir ? g_strdup(p->model_dir)
                                    : hf_snapshot("models--deepseek-ai--JanusFlow-1.3B", "config.json");
  g_autofree char *v = p->vae_dir ? g_strdup(p->vae_dir) : hf_snapshot("models--stabilityai--sdxl-vae", "config.json");
  if (g_strcmp0(m, p->model_dir) != 0 || g_strcmp0(v, p->vae_dir) != 0)
    jf_setup_page_set_folders(p, m, v);
  else if (!p->model_dir)
    jf_setup_page_set_folders(p, NULL, NULL);
}

void jf_setup_page_set_loading(JfSetupPage *p, gboolean loading)
{
  p->loading = loading;
  gtk_stack_set_visible_child_name(GTK_STACK(p->action_stack), loading ? "progress" : "button");
  gtk_label_set_text(GTK_LABEL(p->title_label), loading ? "Loading the Model" : "Welcome to JanusFlow");
  if (loading) {
    gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress_bar), 0);
    gtk_label_set_text(GTK_LABEL(p->progress_label), "Starting…");
    show_status(p, NULL, NULL, NULL);
  }
  update_buttons(p);
}

void jf_setup_page_set_progress(JfSetupPage *p, double fraction, const char *what)
{
  gtk_progress_bar_set_fraction(GTK_PROGRESS_BAR(p->progress_bar), CLAMP(fraction, 0.0, 1.0));
  gtk_label_set_text(GTK_LABEL(p->progress_label), what ? what : "");
}

void jf_setup_page_set_error(JfSetupPage *p, const char *message)
{
  if (message)
    show_status(p, "dialog-error-symbolic", message, "error");
  else
    show_status(p, NULL, NULL, NULL);
}

void jf_setup_page_set_error_action(JfSetupPage *p, const char *label, const char *action)
{
  g_return_if_fail(JF_IS_SETUP_PAGE(p) && label && action);
  gtk_button_set_label(GTK_BUTTON(p->error_button), label);
  gtk_actionable_set_action_name(GTK_ACTIONABLE(p->error_button), action);
  gtk_widget_set_visible(p->error_button, gtk_widget_get_visible(p->status_box));
}

const char *jf_setup_page_get_error_action(JfSetupPage *p)
{
  if (!gtk_widget_get_visible(p->error_button))
    return NULL;
  return gtk_actionable_get_action_name(GTK_ACTIONABLE(p->error_button));
}

/* --- folder choosers ------------------------------------------------------------------------- */

static void on_folder_response(GtkNativeDialog *dialog, int response, JfSetupPage *p)
{
  gboolean is_vae = GPOINTER_TO_INT(g_object_get_data(G_OBJECT(dialog), "is-vae"));
  if (response == GTK_RESPONSE_ACCEPT) {
    GFile *f = gtk_file_chooser_get_file(GTK_FILE_CHOOSER(dialog));
    g_autofree char *path = f ? g_file_get_path(f) : NULL;
    g_clear_object(&f);
    if (path) {
      g_autofree char *m = g_strdup(is_vae ? p->model_dir : path);
      g_autofree char *v = g_strdup(is_vae ? path : p->vae_dir);
      jf_setup_page_set_folders(p, m, v);
    }
  }
  g_object_unref(dialog);
}

static void choose_folder(JfSetupPage *p, gboolean is_vae)
{
  GtkRoot *root = gtk_widget_get_root(GTK_WIDGET(p));
  GtkFileChooserNative *dlg = gtk_file_chooser_native_new(is_vae ? "Choose the VAE Folder" : "Choose the JanusFlow Folder",
                                                          GTK_IS_WINDOW(root) ? GTK_WINDOW(root) : NULL,
                                                          GTK_FILE_CHOOSER_ACTION_SELECT_FOLDER, "_Select", "_Cancel");
  const char *cur = is_vae ? p->vae_dir : p->model_dir;
  if (cur) {
    GFile *f = g_file_new_for_path(cur);
    gtk_file_chooser_set_file(GTK_FILE_CHOOSER(dlg), f, NULL);
    g_object_unref(f);
  }
  g_object_set_data(G_OBJECT(dlg), "is-vae", GINT_TO_POINTER(is_vae));
  gtk_native_dialog_set_modal(GTK_NATIVE_DIALOG(dlg), TRUE);
  g_signal_connect(dlg, "response", G_CALLBACK(on_folder_response), p);
  gtk_native_dialog_show(GTK_NATIVE_DIALOG(dlg));
}

static void on_model_clicked(GtkButton *b, JfSetupPage *p)
{
  (void)b;
  choose_folder(p, FALSE);
}

static void on_vae_clicked(GtkButton *b, JfSetupPage *p)
{
  (void)b;
  choose_folder(p, TRUE);
}

static void on_load_clicked(GtkButton *b, JfSetupPage *p)
{
  (void)b;
  if (p->ready && p->model_dir)
    g_signal_emit(p, signals[SIG_LOAD_REQUESTED], 0, p->model_dir, p->vae_dir);
}

static void jf_setup_page_dispose(GObject *obj)
{
  JfSetupPage *p = JF_SETUP_PAGE(obj);
  if (p->check_cancel)
    g_cancellable_cancel(p->check_cancel);
  g_clear_object(&p->check_cancel);
  gtk_widget_dispose_template(GTK_WIDGET(p), JF_TYPE_SETUP_PAGE);
  G_OBJECT_CLASS(jf_setup_page_parent_class)->dispose(obj);
}

static void jf_setup_page_finalize(GObject *obj)
{
  JfSetupPage *p = JF_SETUP_PAGE(obj);
  g_free(p->model_dir);
  g_free(p->vae_dir);
  G_OBJECT_CLASS(jf_setup_page_parent_class)->finalize(obj);
}

static void jf_setup_page_class_init(JfSetupPageClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_setup_page_dispose;
  oc->finalize = jf_setup_page_finalize;
  signals[SIG_LOAD_REQUESTED] = g_signal_new("load-requested", G_TYPE_FROM_CLASS(klass), G_SIGNAL_RUN_LAST, 0, NULL,
                                             NULL, NULL, G_TYPE_NONE, 2, G_TYPE_STRING, G_TYPE_STRING);
  gtk_widget_class_set_template_from_resource(wc, "/io/github/janusflow/JanusFlow/jf-setup-page.ui");
#define BIND(name) gtk_widget_class_bind_template_child(wc, JfSetupPage, name)
  BIND(title_label);
  BIND(folders_list);
  BIND(model_path_label);
  BIND(vae_path_label);
  BIND(model_button);
  BIND(vae_button);
  BIND(status_box);
  BIND(status_icon);
  BIND(status_label);
  BIND(error_button);
  BIND(action_stack);
  BIND(load_button);
  BIND(progress_bar);
  BIND(progress_label);
#undef BIND
  gtk_widget_class_set_css_name(wc, "setuppage");
}

static void jf_setup_page_init(JfSetupPage *p)
{
  gtk_widget_init_template(GTK_WIDGET(p));
  g_signal_connect(p->model_button, "clicked", G_CALLBACK(on_model_clicked), p);
  g_signal_connect(p->vae_button, "clicked", G_CALLBACK(on_vae_clicked), p);
  g_signal_connect(p->load_button, "clicked", G_CALLBACK(on_load_clicked), p);
  set_path_label(p->model_path_label, NULL, "No folder chosen");
  set_path_label(p->vae_path_label, NULL, "No folder chosen (optional: chat works without it)");
}
