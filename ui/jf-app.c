#include "jf-app.h"
#include "jf-preferences-window.h"
#include "jf-config.h"
#include "jf-resources.h"

#define RESOURCE_BASE "/io/github/janusflow/JanusFlow"

struct _JfApplication {
  GtkApplication parent;
  JfEngine *engine;
  JfSettings *settings;
  JfWindow *window;   /* weak: the window belongs to GTK */
};

G_DEFINE_FINAL_TYPE(JfApplication, jf_application, GTK_TYPE_APPLICATION)

JfEngine *jf_application_get_engine(JfApplication *app) { return app->engine; }
JfSettings *jf_application_get_settings(JfApplication *app) { return app->settings; }

static void on_window_destroy(GtkWidget *win, JfApplication *app)
{
  (void)win;
  app->window = NULL;
}

JfWindow *jf_application_get_window(JfApplication *app)
{
  if (!app->window) {
    /* the last window closed but the application lives on (held): start afresh, as a new
     * process would, with a new worker and the settings as saved */
    if (jf_engine_is_shut_down(app->engine)) {
      g_object_unref(app->engine);
      app->engine = jf_engine_new();
      jf_settings_free(app->settings);
      app->settings = jf_settings_load();
    }
    app->window = jf_window_new(GTK_APPLICATION(app), app->engine, app->settings);
    g_signal_connect(app->window, "destroy", G_CALLBACK(on_window_destroy), app);
    gtk_window_present(GTK_WINDOW(app->window));
  }
  return app->window;
}

/* --- app actions ----------------------------------------------------------------------------- */

static void on_prefs_changed(JfPreferencesWindow *prefs, JfApplication *app)
{
  (void)prefs;
  if (app->window) {
    jf_canvas_pane_apply_settings(jf_window_get_canvas_pane(app->window));
    jf_window_offer_reload(app->window);
  }
}

static void act_preferences(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfApplication *app = data;
  GtkWindow *parent = gtk_application_get_active_window(GTK_APPLICATION(app));
  GtkWidget *prefs = jf_preferences_window_new(parent, app->settings, app->engine);
  gtk_window_set_application(GTK_WINDOW(prefs), GTK_APPLICATION(app));
  g_signal_connect_object(prefs, "changed", G_CALLBACK(on_prefs_changed), app, 0);
  gtk_window_present(GTK_WINDOW(prefs));
}

static void act_reload_model(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfApplication *app = data;
  if (!app->window || !app->settings->model_dir)
    return;
  GError *error = NULL;
  if (!jf_settings_save(app->settings, &error)) {
    g_warning("settings: %s", error->message);
    g_error_free(error);
  }
  jf_window_reload_model(app->window);
}

static void act_about(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  JfApplication *app = data;
  const char *authors[] = { "The JanusFlow desktop authors", NULL };
  gtk_show_about_dialog(gtk_application_get_active_window(GTK_APPLICATION(app)),
                        "program-name", "JanusFlow",
                        "logo-icon-name", JF_APP_ID,
                        "version", JF_VERSION,
                        "comments", "Chat about images and make new ones with DeepSeek’s JanusFlow-1.3B, "
                                    "running on your own graphics card.",
                        "license-type", GTK_LICENSE_MIT_X11,
                        "authors", authors,
                        "website", "https://huggingface.co/deepseek-ai/JanusFlow-1.3B",
                        "website-label", "The JanusFlow model",
                        NULL);
}

static void act_quit(GSimpleAction *a, GVariant *p, gpointer data)
{
  (void)a;
  (void)p;
  /* close the windows the normal way, so their cleanup runs */
  GList *wins = g_list_copy(gtk_application_get_windows(GTK_APPLICATION(data)));
  for (GList *l = wins; l; l = l->next)
    gtk_window_close(l->data);
  g_list_free(wins);
}

static const GActionEntry app_actions[] = {
  { "preferences", act_preferences, NULL, NULL, NULL, { 0 } },
  { "reload-model", act_reload_model, NULL, NULL, NULL, { 0 } },
  { "about", act_about, NULL, NULL, NULL, { 0 } },
  { "quit", act_quit, NULL, NULL, NULL, { 0 } },
};

static void set_accels(GtkApplication *app)
{
  static const struct { const char *action; const char *accels[3]; } accels[] = {
    { "win.run", { "<Primary>Return", "<Primary>KP_Enter", NULL } },
    { "win.stop", { "Escape", NULL, NULL } },
    { "win.save-image", { "<Primary>s", NULL, NULL } },
    { "win.copy-image", { "<Primary>c", NULL, NULL } },
    { "win.open-image", { "<Primary>o", NULL, NULL } },
    { "win.new-chat", { "<Primary>n", NULL, NULL } },
    { "win.show-page::chat", { "<Alt>1", NULL, NULL } },
    { "win.show-page::create", { "<Alt>2", NULL, NULL } },
    { "app.preferences", { "<Primary>comma", NULL, NULL } },
    { "app.quit", { "<Primary>q", NULL, NULL } },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(accels); i++)
    gtk_application_set_accels_for_action(app, accels[i].action, accels[i].accels);
}

/* --- GApplication ---------------------------------------------------------------------------- */

static void jf_application_startup(GApplication *gapp)
{
  JfApplication *app = JF_APPLICATION(gapp);
  G_APPLICATION_CLASS(jf_application_parent_class)->startup(gapp);
  g_action_map_add_action_entries(G_ACTION_MAP(app), app_actions, G_N_ELEMENTS(app_actions), app);
  set_accels(GTK_APPLICATION(app));
  GtkCssProvider *css = gtk_css_provider_new();
  gtk_css_provider_load_from_resource(css, RESOURCE_BASE "/style.css");
  gtk_style_context_add_provider_for_display(gdk_display_get_default(), GTK_STYLE_PROVIDER(css),
                                             GTK_STYLE_PROVIDER_PRIORITY_APPLICATION);
  g_object_unref(css);
  gtk_window_set_default_icon_name(JF_APP_ID);
  app->engine = jf_engine_new();
}

static void jf_application_activate(GApplication *gapp)
{
  JfApplication *app = JF_APPLICATION(gapp);
  gboolean fresh = app->window == NULL;
  JfWindow *w = jf_application_get_window(app);
  if (fresh)
    jf_window_open_model(w, app->settings->model_dir, app->settings->vae_dir);
  gtk_window_present(GTK_WINDOW(w));
}

static int jf_application_command_line(GApplication *gapp, GApplicationCommandLine *cmd)
{
  JfApplication *app = JF_APPLICATION(gapp);
  GVariantDict *opts = g_application_command_line_get_options_dict(cmd);
  g_autofree char *model = NULL, *vae = NULL;
  g_variant_dict_lookup(opts, "model", "^ay", &model);
  g_variant_dict_lookup(opts, "vae", "^ay", &vae);
  if (!model) {
    if (vae) {
      g_application_command_line_printerr(cmd, "janusflow: --vae needs --model\n");
      return 2;
    }
    jf_application_activate(gapp);
    return 0;
  }
  /* relative paths are relative to where the command ran (it may be another process) */
  const char *cwd = g_application_command_line_get_cwd(cmd);
  g_autofree char *model_abs = g_path_is_absolute(model) || !cwd ? g_strdup(model) : g_build_filename(cwd, model, NULL);
  g_autofree char *vae_abs = !vae ? NULL : g_path_is_absolute(vae) || !cwd ? g_strdup(vae) : g_build_filename(cwd, vae, NULL);
  JfWindow *w = jf_application_get_window(app);
  jf_window_open_model(w, model_abs, vae_abs);
  gtk_window_present(GTK_WINDOW(w));
  return 0;
}

static void jf_application_shutdown(GApplication *gapp)
{
  JfApplication *app = JF_APPLICATION(gapp);
  if (app->engine)
    jf_engine_shutdown(app->engine);
  GError *error = NULL;
  if (!jf_settings_save(app->settings, &error)) {
    g_warning("settings: %s", error->message);
    g_error_free(error);
  }
  G_APPLICATION_CLASS(jf_application_parent_class)->shutdown(gapp);
}

static void jf_application_dispose(GObject *obj)
{
  JfApplication *app = JF_APPLICATION(obj);
  g_clear_object(&app->engine);
  G_OBJECT_CLASS(jf_application_parent_class)->dispose(obj);
}

static void jf_application_finalize(GObject *obj)
{
  JfApplication *app = JF_APPLICATION(obj);
  jf_settings_free(app->settings);
  G_OBJECT_CLASS(jf_application_parent_class)->finalize(obj);
}

static void jf_application_class_init(JfApplicationClass *klass)
{
  GApplicationClass *ac = G_APPLICATION_CLASS(klass);
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  ac->startup = jf_application_startup;
  ac->activate = jf_application_activate;
  ac->command_line = jf_application_command_line;
  ac->shutdown = jf_application_shutdown;
  oc->dispose = jf_application_dispose;
  oc->finalize = jf_application_finalize;
}

static void jf_application_init(JfApplication *app)
{
  static const GOptionEntry options[] = {
    { "model", 'm', 0, G_OPTION_ARG_FILENAME, NULL, "The JanusFlow model folder", "DIR" },
    { "vae", 0, 0, G_OPTION_ARG_FILENAME, NULL, "The SDXL VAE folder (for making images)", "DIR" },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  g_application_add_main_option_entries(G_APPLICATION(app), options);
  g_application_set_option_context_summary(G_APPLICATION(app),
    "Chat about images and make new ones with JanusFlow.\n"
    "Commands (janusflow chat, generate, bench, info, tokenize) run without a window: see janusflow --help.");
  app->settings = jf_settings_load();
}

void jf_ui_ensure_resources(void)
{
  static gsize done = 0;
  if (g_once_init_enter(&done))
    /* manual registration: a constructor in a static library's object would be dropped by the linker */
    g_once_init_leave(&done, (jf_ui_register_resource(), 1));
}

JfApplication *jf_application_new(GApplicationFlags extra_flags)
{
  jf_ui_ensure_resources();
  return g_object_new(JF_TYPE_APPLICATION, "application-id", JF_APP_ID,
                      "flags", G_APPLICATION_HANDLES_COMMAND_LINE | extra_flags,
                      "resource-base-path", RESOURCE_BASE, NULL);
}

int jf_app_run(int argc, char **argv)
{
  g_set_application_name("JanusFlow");
  JfApplication *app = jf_application_new(G_APPLICATION_DEFAULT_FLAGS);
  int status = g_application_run(G_APPLICATION(app), argc, argv);
  g_object_unref(app);
  return status;
}
