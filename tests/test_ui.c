/* In-process UI tests: the real application, window and widgets driven through their signals
 * and actions, with the tiny fixture model on the device (lavapipe in CI). Needs a display
 * (CI runs it under xvfb-run). XDG folders and HOME point into a temporary folder, so nothing
 * here touches the user's files.
 *
 * The tests share one application instance in order (model loading is the slow part); the
 * restart test builds a second instance in the same process on the same XDG folders. */
#include <gtk/gtk.h>
#include <glib/gstdio.h>
#include <string.h>
#include "jf-app.h"
#include "jf-canvas-view.h"
#include "jf-chat-store.h"
#include "jf-gallery.h"
#include "jf-preferences-window.h"
#include "image.h"

static char *tmp_root;
static char *model_dir, *vae_dir, *chat_png;
static JfApplication *app;
static JfWindow *win;

#define TIMEOUT_S 600

typedef gboolean (*CondFunc)(gpointer data);

/* Runs the main loop until cond holds (or fails the test after TIMEOUT_S). */
static void wait_for(CondFunc cond, gpointer data, const char *what)
{
  gint64 end = g_get_monotonic_time() + (gint64)TIMEOUT_S * G_USEC_PER_SEC;
  while (!cond(data)) {
    if (g_get_monotonic_time() > end)
      g_error("timed out waiting for %s", what);
    g_main_context_iteration(NULL, FALSE);
    g_usleep(1000);
  }
}

/* Lets pending idle work (signal deliveries, redraws) run. */
static void spin(int ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  while (g_get_monotonic_time() < end) {
    while (g_main_context_iteration(NULL, FALSE))
      ;
    g_usleep(1000);
  }
}

static GtkWidget *child(gpointer widget, GType type, const char *name)
{
  GObject *o = gtk_widget_get_template_child(GTK_WIDGET(widget), type, name);
  g_assert_nonnull(o);
  return GTK_WIDGET(o);
}

static GtkAdjustment *adjustment(gpointer widget, GType type, const char *name)
{
  GObject *o = gtk_widget_get_template_child(GTK_WIDGET(widget), type, name);
  g_assert_true(GTK_IS_ADJUSTMENT(o));
  return GTK_ADJUSTMENT(o);
}

static gboolean engine_loaded(gpointer data)
{
  JfEngine *e = data;
  return !jf_engine_is_loading(e);
}

/* Opens the window (a new one after the last was closed) and loads the model, as
 * `janusflow --model DIR --vae DIR` does. */
static gboolean engine_idle(gpointer data)
{
  return jf_engine_n_pending(data) == 0;
}

static JfWindow *open_window(void)
{
  JfWindow *w = jf_application_get_window(app);
  if (!jf_engine_is_loaded(jf_application_get_engine(app)) && !jf_engine_is_loading(jf_application_get_engine(app)))
    jf_window_open_model(w, model_dir, vae_dir);
  wait_for(engine_loaded, jf_application_get_engine(app), "the model to load");
  g_assert_true(jf_engine_is_loaded(jf_application_get_engine(app)));
  g_assert_true(jf_engine_can_generate(jf_application_get_engine(app)));
  g_assert_true(jf_engine_can_see(jf_application_get_engine(app)));
  g_assert_cmpstr(jf_window_get_page(w), ==, "chat");
  return w;
}

static gboolean window_gone(gpointer data)
{
  (void)data;
  return gtk_application_get_windows(GTK_APPLICATION(app)) == NULL;
}

static void close_window(JfWindow *w)
{
  gtk_window_close(GTK_WINDOW(w));
  wait_for(window_gone, NULL, "the window to close");
  spin(50);
}

/* --- shell ----------------------------------------------------------------------------------- */

static void test_accels(void)
{
  static const struct { const char *action, *accel; } want[] = {
    { "win.run", "<Control>Return" },   { "win.stop", "Escape" },         { "win.save-image", "<Control>s" },
    { "win.copy-image", "<Control>c" }, { "win.open-image", "<Control>o" }, { "app.preferences", "<Control>comma" },
    { "app.quit", "<Control>q" },
  };
  for (size_t i = 0; i < G_N_ELEMENTS(want); i++) {
    char **accels = gtk_application_get_accels_for_action(GTK_APPLICATION(app), want[i].action);
    g_assert_nonnull(accels[0]);
    guint key, want_key;
    GdkModifierType mods, want_mods;
    g_assert_true(gtk_accelerator_parse(accels[0], &key, &mods));
    g_assert_true(gtk_accelerator_parse(want[i].accel, &want_key, &want_mods));
    g_assert_cmpuint(key, ==, want_key);
    g_assert_cmpuint(mods, ==, want_mods);
    g_strfreev(accels);
  }
  /* the actions exist on the window / application */
  g_assert_nonnull(g_action_map_lookup_action(G_ACTION_MAP(win), "run"));
  g_assert_nonnull(g_action_map_lookup_action(G_ACTION_MAP(app), "preferences"));
  /* the shortcuts window is the application's help overlay */
  g_assert_nonnull(gtk_application_window_get_help_overlay(GTK_APPLICATION_WINDOW(win)));
  /* the header shows the device memory the engine reports */
  g_assert_cmpuint(jf_engine_get_memory(jf_application_get_engine(app)), >, 0);
  GtkWidget *mem = child(win, JF_TYPE_WINDOW, "memory_label");
  g_assert_true(gtk_widget_get_visible(mem));
  g_autofree char *mem_text = g_format_size(jf_engine_get_memory(jf_application_get_engine(app)));
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(mem)), ==, mem_text);
  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(win)), ==, "JanusFlow");
}

static gboolean setup_checked(gpointer data)
{
  return !jf_setup_page_is_checking(data);
}

static void test_setup_check(void)
{
  /* a folder without the model files: the page names what is missing and refuses to load */
  JfSetupPage *page = g_object_new(JF_TYPE_SETUP_PAGE, NULL);
  g_object_ref_sink(page);
  g_autofree char *empty = g_build_filename(tmp_root, "empty-model", NULL);
  g_mkdir_with_parents(empty, 0700);
  jf_setup_page_set_folders(page, empty, NULL);
  wait_for(setup_checked, page, "the folder check");
  g_assert_false(jf_setup_page_is_ready(page));
  const char *msg = gtk_label_get_text(GTK_LABEL(child(page, JF_TYPE_SETUP_PAGE, "status_label")));
  g_test_message("empty folder: %s", msg);
  g_assert_nonnull(strstr(msg, "config.json"));
  g_assert_false(gtk_widget_get_sensitive(child(page, JF_TYPE_SETUP_PAGE, "load_button")));
  /* the real folders pass */
  jf_setup_page_set_folders(page, model_dir, vae_dir);
  wait_for(setup_checked, page, "the folder check");
  g_assert_true(jf_setup_page_is_ready(page));
  g_assert_true(gtk_widget_get_sensitive(child(page, JF_TYPE_SETUP_PAGE, "load_button")));
  g_object_unref(page);
}

/* --- canvas ---------------------------------------------------------------------------------- */

typedef struct {
  GArray *cfgs;        /* float: JfGenStep.cfg of every step */
  GArray *steps;       /* int: JfGenStep.steps */
  GPtrArray *hashes;   /* char*: checksum of the canvas after each step */
  JfCanvasPane *pane;
  guint frames_at_step;
  int change_cfg_at;   /* step index whose handler moves the slider, -1 none */
  double new_cfg;
  int change_steps_at;
  int new_steps;
  int stop_at;
  gboolean finished;
  GError *error;
  guint n_images;
} GenWatch;

static char *texture_checksum(GdkTexture *t)
{
  int w = gdk_texture_get_width(t), h = gdk_texture_get_height(t);
  guint8 *buf = g_malloc((gsize)w * h * 4);
  gdk_texture_download(t, buf, (gsize)w * 4);
  char *sum = g_compute_checksum_for_data(G_CHECKSUM_SHA1, buf, (gsize)w * h * 4);
  g_free(buf);
  return sum;
}

/* Connected after the pane's handler: the canvas already shows this step's preview. */
static void on_step_after(JfEngine *e, const JfEngineStep *st, GenWatch *gw)
{
  (void)e;
  float cfg = st->cfg;
  g_array_append_val(gw->cfgs, cfg);
  g_array_append_val(gw->steps, st->steps);
  JfCanvasView *view = jf_canvas_pane_get_view(gw->pane);
  gw->frames_at_step = jf_canvas_view_get_frame_count(view);
  g_assert_nonnull(st->preview);
  g_assert_true(jf_canvas_view_get_texture(view) == st->preview);
  g_ptr_array_add(gw->hashes, texture_checksum(st->preview));
  if (st->step == gw->change_cfg_at)
    gtk_range_set_value(GTK_RANGE(child(gw->pane, JF_TYPE_CANVAS_PANE, "cfg_scale")), gw->new_cfg);
  if (st->step == gw->change_steps_at)
    gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(gw->pane, JF_TYPE_CANVAS_PANE, "steps_spin")), gw->new_steps);
  if (st->step == gw->stop_at)
    g_signal_emit_by_name(child(gw->pane, JF_TYPE_CANVAS_PANE, "stop_button"), "clicked");
}

static void on_gen_finished(JfEngine *e, guint job, GPtrArray *textures, GError *error, GenWatch *gw)
{
  (void)e;
  (void)job;
  gw->finished = TRUE;
  gw->n_images = textures ? textures->len : 0;
  if (error)
    gw->error = g_error_copy(error);
}

static gboolean gen_done(gpointer data)
{
  GenWatch *gw = data;
  return gw->finished && !jf_canvas_pane_is_busy(gw->pane) && jf_canvas_pane_get_n_saving(gw->pane) == 0;
}

static void gen_watch_init(GenWatch *gw)
{
  memset(gw, 0, sizeof *gw);
  gw->cfgs = g_array_new(FALSE, FALSE, sizeof(float));
  gw->steps = g_array_new(FALSE, FALSE, sizeof(int));
  gw->hashes = g_ptr_array_new_with_free_func(g_free);
  gw->pane = jf_window_get_canvas_pane(win);
  gw->change_cfg_at = gw->change_steps_at = gw->stop_at = -1;
}

static void gen_watch_clear(GenWatch *gw)
{
  g_array_unref(gw->cfgs);
  g_array_unref(gw->steps);
  g_ptr_array_unref(gw->hashes);
  g_clear_error(&gw->error);
}

/* Types the prompt, sets the controls and presses Generate; returns when the run is over. */
static void run_generation(GenWatch *gw, const char *prompt, int steps, double cfg, guint64 seed)
{
  JfCanvasPane *pane = gw->pane;
  JfEngine *engine = jf_application_get_engine(app);
  jf_window_show_page(win, "create");
  g_assert_cmpstr(jf_window_get_page(win), ==, "create");
  GtkTextView *prompt_view = GTK_TEXT_VIEW(child(pane, JF_TYPE_CANVAS_PANE, "prompt_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(prompt_view), prompt, -1);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "steps_spin")), steps);
  gtk_range_set_value(GTK_RANGE(child(pane, JF_TYPE_CANVAS_PANE, "cfg_scale")), cfg);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "seed_spin")), (double)seed);
  gtk_toggle_button_set_active(GTK_TOGGLE_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "seed_lock")), TRUE);
  gulong h1 = g_signal_connect_after(engine, "gen-step", G_CALLBACK(on_step_after), gw);
  gulong h2 = g_signal_connect_after(engine, "gen-finished", G_CALLBACK(on_gen_finished), gw);
  jf_engine_set_lockstep(engine, TRUE);
  g_signal_emit_by_name(child(pane, JF_TYPE_CANVAS_PANE, "generate_button"), "clicked");
  g_assert_true(jf_canvas_pane_is_busy(pane));
  wait_for(gen_done, gw, "the generation to finish");
  jf_engine_set_lockstep(engine, FALSE);
  g_signal_handler_disconnect(engine, h1);
  g_signal_handler_disconnect(engine, h2);
}

static void test_generate(void)
{
  GenWatch gw;
  gen_watch_init(&gw);
  JfCanvasView *view = jf_canvas_pane_get_view(gw.pane);
  guint frames0 = jf_canvas_view_get_frame_count(view);
  guint gallery0 = jf_gallery_strip_get_n_items(jf_canvas_pane_get_gallery(gw.pane));
  run_generation(&gw, "a red bicycle by the sea", 5, 2.0, 1234);
  g_assert_no_error(gw.error);
  g_assert_cmpuint(gw.cfgs->len, ==, 5);
  /* one canvas update per step, each a different picture */
  for (guint i = 0; i < gw.hashes->len; i++)
    if (i > 0)
      g_assert_cmpstr(g_ptr_array_index(gw.hashes, i), !=, g_ptr_array_index(gw.hashes, i - 1));
  /* 5 previews + the final image */
  g_assert_cmpuint(jf_canvas_view_get_frame_count(view) - frames0, ==, 6);
  for (guint i = 0; i < gw.cfgs->len; i++)
    g_assert_cmpfloat_with_epsilon(g_array_index(gw.cfgs, float, i), 2.0f, 1e-6);
  GdkTexture *img = jf_canvas_pane_get_image(gw.pane);
  g_assert_nonnull(img);
  g_assert_true(jf_canvas_view_get_texture(view) == img);

  /* the result went to the gallery, on disk with its parameters */
  JfGalleryStrip *strip = jf_canvas_pane_get_gallery(gw.pane);
  g_assert_cmpuint(jf_gallery_strip_get_n_items(strip), ==, gallery0 + 1);
  const JfGalleryEntry *e = jf_gallery_strip_get_item(strip, 0);
  g_assert_nonnull(e->path);
  g_assert_true(g_str_has_prefix(e->path, tmp_root));
  GError *error = NULL;
  GHashTable *text = image_read_png_text(e->path, &error);
  g_assert_no_error(error);
  g_assert_cmpstr(g_hash_table_lookup(text, "janusflow.prompt"), ==, "a red bicycle by the sea");
  g_assert_cmpstr(g_hash_table_lookup(text, "janusflow.steps"), ==, "5");
  g_assert_cmpstr(g_hash_table_lookup(text, "janusflow.seed"), ==, "1234");
  g_assert_cmpstr(g_hash_table_lookup(text, "janusflow.cfg"), ==, "2.00");
  g_hash_table_unref(text);

  /* the same seed and settings give the same image */
  char *first = texture_checksum(img);
  GenWatch again;
  gen_watch_init(&again);
  run_generation(&again, "a red bicycle by the sea", 5, 2.0, 1234);
  g_assert_no_error(again.error);
  char *second = texture_checksum(jf_canvas_pane_get_image(again.pane));
  g_assert_cmpstr(first, ==, second);
  g_free(first);
  g_free(second);
  gen_watch_clear(&again);
  gen_watch_clear(&gw);
}

static void test_steering(void)
{
  GenWatch gw;
  gen_watch_init(&gw);
  /* after step 1 the slider goes to 5.0; after step 2 the run is cut from 6 to 4 steps */
  gw.change_cfg_at = 1;
  gw.new_cfg = 5.0;
  gw.change_steps_at = 2;
  gw.new_steps = 4;
  run_generation(&gw, "a lighthouse at dawn", 6, 2.0, 99);
  g_assert_no_error(gw.error);
  g_assert_cmpuint(gw.cfgs->len, ==, 4);
  g_assert_cmpfloat_with_epsilon(g_array_index(gw.cfgs, float, 0), 2.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon(g_array_index(gw.cfgs, float, 1), 2.0f, 1e-6);
  /* the engine used the new value from the very next step */
  g_assert_cmpfloat_with_epsilon(g_array_index(gw.cfgs, float, 2), 5.0f, 1e-6);
  g_assert_cmpfloat_with_epsilon(g_array_index(gw.cfgs, float, 3), 5.0f, 1e-6);
  g_assert_cmpint(g_array_index(gw.steps, int, 2), ==, 6);
  g_assert_cmpint(g_array_index(gw.steps, int, 3), ==, 4);
  /* the saved image says it was steered */
  const JfGalleryEntry *e = jf_gallery_strip_get_item(jf_canvas_pane_get_gallery(gw.pane), 0);
  g_assert_cmpint(e->steps, ==, 4);
  g_assert_cmpfloat_with_epsilon(e->cfg, 5.0, 1e-6);
  g_assert_nonnull(e->steering);
  gen_watch_clear(&gw);
}

static void test_stop(void)
{
  GenWatch gw;
  gen_watch_init(&gw);
  guint gallery0 = jf_gallery_strip_get_n_items(jf_canvas_pane_get_gallery(gw.pane));
  gw.stop_at = 1;
  run_generation(&gw, "a quiet forest", 20, 2.0, 7);
  g_assert_error(gw.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  /* cancellation is honoured between steps: step 2 may have been under way already */
  g_assert_cmpuint(gw.cfgs->len, >=, 2);
  g_assert_cmpuint(gw.cfgs->len, <=, 3);
  g_assert_false(jf_canvas_pane_is_busy(gw.pane));
  g_assert_null(jf_canvas_pane_get_image(gw.pane));
  g_assert_cmpuint(jf_gallery_strip_get_n_items(jf_canvas_pane_get_gallery(gw.pane)), ==, gallery0);
  const char *status = gtk_label_get_text(GTK_LABEL(child(gw.pane, JF_TYPE_CANVAS_PANE, "status_label")));
  g_assert_true(g_str_has_prefix(status, "Stopped"));
  /* and the engine works afterwards */
  GenWatch after;
  gen_watch_init(&after);
  run_generation(&after, "a quiet forest", 2, 2.0, 7);
  g_assert_no_error(after.error);
  g_assert_nonnull(jf_canvas_pane_get_image(after.pane));
  gen_watch_clear(&after);
  gen_watch_clear(&gw);
}

static gboolean recall_done(gpointer data)
{
  JfCanvasPane *pane = data;
  g_autofree char *prompt = jf_canvas_pane_get_prompt(pane);
  return g_strcmp0(prompt, "a red bicycle by the sea") == 0;
}

/* Dropping (here: opening) a PNG made by the app restores its parameters. */
static void test_restore_params(void)
{
  JfCanvasPane *pane = jf_window_get_canvas_pane(win);
  JfGalleryStrip *strip = jf_canvas_pane_get_gallery(pane);
  const JfGalleryEntry *e = NULL;
  for (guint i = 0; i < jf_gallery_strip_get_n_items(strip); i++) {
    const JfGalleryEntry *c = jf_gallery_strip_get_item(strip, i);
    if (g_strcmp0(c->prompt, "a red bicycle by the sea") == 0)
      e = c;
  }
  g_assert_nonnull(e);
  g_autofree char *path = g_strdup(e->path);
  jf_canvas_pane_set_prompt(pane, "something else");
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "steps_spin")), 17);
  gtk_range_set_value(GTK_RANGE(child(pane, JF_TYPE_CANVAS_PANE, "cfg_scale")), 7.5);
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "seed_spin")), 5);
  GFile *f = g_file_new_for_path(path);
  jf_canvas_pane_open_file(pane, f);
  g_object_unref(f);
  wait_for(recall_done, pane, "the parameters to be restored");
  g_assert_cmpint(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "steps_spin"))), ==, 5);
  g_assert_cmpfloat_with_epsilon(gtk_range_get_value(GTK_RANGE(child(pane, JF_TYPE_CANVAS_PANE, "cfg_scale"))), 2.0, 1e-6);
  g_assert_cmpint(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "seed_spin"))), ==, 1234);
  g_assert_true(gtk_toggle_button_get_active(GTK_TOGGLE_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "seed_lock"))));
  g_assert_nonnull(jf_canvas_pane_get_image(pane));
  g_assert_nonnull(jf_window_get_toast(win));
  g_assert_true(g_str_has_prefix(jf_window_get_toast(win), "Settings restored from "));
}

static gboolean attached(gpointer data)
{
  return jf_chat_pane_get_n_attachments(data) > 0;
}

static gboolean two_attachments(gpointer data)
{
  return jf_chat_pane_get_n_attachments(data) == 2;
}

/* Copy (Ctrl+C outside text), paste into the message box, "ask about this image", and
 * recalling a gallery item's parameters. */
static void test_copy_paste_ask(void)
{
  JfCanvasPane *canvas = jf_window_get_canvas_pane(win);
  JfChatPane *chat = jf_window_get_chat_pane(win);
  jf_window_show_page(win, "create");
  GdkTexture *img = jf_canvas_pane_get_image(canvas);
  g_assert_nonnull(img);
  gtk_widget_grab_focus(child(canvas, JF_TYPE_CANVAS_PANE, "generate_button"));
  g_assert_true(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "copy-image"));
  g_action_group_activate_action(G_ACTION_GROUP(win), "copy-image", NULL);
  GdkClipboard *cb = gtk_widget_get_clipboard(GTK_WIDGET(win));
  g_assert_true(gdk_content_formats_contain_gtype(gdk_clipboard_get_formats(cb), GDK_TYPE_TEXTURE));

  jf_chat_pane_clear_attachments(chat);
  jf_window_show_page(win, "chat");
  g_signal_emit_by_name(child(chat, JF_TYPE_CHAT_PANE, "input_view"), "paste-clipboard");
  wait_for(attached, chat, "the pasted image");
  g_assert_cmpuint(jf_chat_pane_get_n_attachments(chat), ==, 1);

  jf_window_show_page(win, "create");
  g_action_group_activate_action(G_ACTION_GROUP(win), "ask-about-image", NULL);
  g_assert_cmpstr(jf_window_get_page(win), ==, "chat");
  wait_for(two_attachments, chat, "the second attachment");
  jf_chat_pane_clear_attachments(chat);

  /* a gallery item brings back its prompt and settings */
  JfGalleryStrip *strip = jf_canvas_pane_get_gallery(canvas);
  g_assert_cmpuint(jf_gallery_strip_get_n_items(strip), >, 0);
  const JfGalleryEntry *e = jf_gallery_strip_get_item(strip, 0);
  jf_canvas_pane_set_prompt(canvas, "something else");
  jf_gallery_strip_activate(strip, 0);
  g_autofree char *prompt = jf_canvas_pane_get_prompt(canvas);
  g_assert_cmpstr(prompt, ==, e->prompt);
  g_assert_cmpint(gtk_spin_button_get_value_as_int(GTK_SPIN_BUTTON(child(canvas, JF_TYPE_CANVAS_PANE, "steps_spin"))), ==,
                  e->steps);
}

/* --- chat ------------------------------------------------------------------------------------ */

typedef struct {
  guint pieces;
  GString *streamed;
  gboolean finished;
  GError *error;
  char *answer;
  JfChatPane *pane;
  guint msg_len_growth;  /* how often the bubble grew while streaming */
  guint last_len;
} ChatWatch;

static void on_chat_text_after(JfEngine *e, guint job, const char *piece, ChatWatch *cw)
{
  (void)e;
  (void)job;
  cw->pieces++;
  g_string_append(cw->streamed, piece);
  /* the bubble shows the text as it streams */
  guint n = jf_chat_pane_get_n_messages(cw->pane);
  JfChatMessage *m = jf_chat_pane_get_message(cw->pane, n - 1);
  guint len = (guint)strlen(jf_chat_message_get_text(m));
  if (len > cw->last_len)
    cw->msg_len_growth++;
  cw->last_len = len;
}

static void on_chat_finished(JfEngine *e, guint job, const char *answer, GError *error, ChatWatch *cw)
{
  (void)e;
  (void)job;
  cw->finished = TRUE;
  cw->answer = g_strdup(answer);
  if (error)
    cw->error = g_error_copy(error);
}

static gboolean chat_done(gpointer data)
{
  ChatWatch *cw = data;
  return cw->finished && !jf_chat_pane_is_busy(cw->pane) && !jf_chat_pane_is_saving(cw->pane);
}


static void test_chat_image(void)
{
  JfChatPane *pane = jf_window_get_chat_pane(win);
  JfEngine *engine = jf_application_get_engine(app);
  jf_window_show_page(win, "chat");
  GSList *files = g_slist_append(NULL, g_file_new_for_path(chat_png));
  jf_chat_pane_attach_files(pane, files);
  g_slist_free_full(files, g_object_unref);
  wait_for(attached, pane, "the image to be attached");
  g_assert_cmpuint(jf_chat_pane_get_n_attachments(pane), ==, 1);

  /* answer settings: greedy, 8 tokens (the fixture's chat_image case) */
  gtk_adjustment_set_value(adjustment(pane, JF_TYPE_CHAT_PANE, "temperature_adj"), 0.0);
  gtk_adjustment_set_value(adjustment(pane, JF_TYPE_CHAT_PANE, "max_tokens_adj"), 8);
  GtkTextView *input = GTK_TEXT_VIEW(child(pane, JF_TYPE_CHAT_PANE, "input_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(input), "Describe this picture in 3 words.", -1);

  ChatWatch cw = { 0 };
  cw.streamed = g_string_new(NULL);
  cw.pane = pane;
  gulong h1 = g_signal_connect_after(engine, "chat-text", G_CALLBACK(on_chat_text_after), &cw);
  gulong h2 = g_signal_connect_after(engine, "chat-finished", G_CALLBACK(on_chat_finished), &cw);
  guint n0 = jf_chat_pane_get_n_messages(pane);
  /* Enter sends (ctrl+enter is win.run; both end in jf_chat_pane_send) */
  g_assert_true(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "run"));
  g_action_group_activate_action(G_ACTION_GROUP(win), "run", NULL);
  g_assert_true(jf_chat_pane_is_busy(pane));
  g_assert_cmpuint(jf_chat_pane_get_n_attachments(pane), ==, 0);
  wait_for(chat_done, &cw, "the chat answer");
  g_signal_handler_disconnect(engine, h1);
  g_signal_handler_disconnect(engine, h2);

  g_assert_no_error(cw.error);
  g_assert_cmpuint(jf_chat_pane_get_n_messages(pane), ==, n0 + 2);
  JfChatMessage *q = jf_chat_pane_get_message(pane, n0), *a = jf_chat_pane_get_message(pane, n0 + 1);
  g_assert_true(jf_chat_message_is_from_user(q));
  g_assert_cmpuint(jf_chat_message_get_n_images(q), ==, 1);
  g_assert_cmpstr(jf_chat_message_get_text(q), ==, "Describe this picture in 3 words.");
  g_assert_false(jf_chat_message_is_from_user(a));
  /* streamed token by token: several pieces, the bubble grew with them */
  g_test_message("answer in %u pieces: '%s'", cw.pieces, cw.answer);
  g_assert_cmpuint(cw.pieces, >=, 2);
  g_assert_cmpuint(cw.msg_len_growth, >=, 2);
  g_autofree char *want = g_strdup(cw.answer);
  g_strchug(want);
  g_assert_cmpstr(jf_chat_message_get_text(a), ==, want);
  g_assert_cmpuint(strlen(want), >, 0);

  /* saved on disk */
  g_autofree char *json_path = g_build_filename(g_get_user_data_dir(), "janusflow", "chat.json", NULL);
  g_assert_true(g_file_test(json_path, G_FILE_TEST_EXISTS));
  g_string_free(cw.streamed, TRUE);
  g_free(cw.answer);
}

/* A second turn stopped during its answer: Escape (win.stop) ends it where it is; the partial
 * answer stays, marked as stopped. */
static void on_first_piece_stop(JfEngine *e, guint job, const char *piece, ChatWatch *cw)
{
  (void)e;
  (void)job;
  (void)piece;
  if (cw->pieces++ == 0) {
    /* Escape = win.stop, enabled while the chat runs */
    g_assert_true(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "stop"));
    g_action_group_activate_action(G_ACTION_GROUP(win), "stop", NULL);
  }
}

static void test_chat_stop(void)
{
  JfChatPane *pane = jf_window_get_chat_pane(win);
  JfEngine *engine = jf_application_get_engine(app);
  gtk_adjustment_set_value(adjustment(pane, JF_TYPE_CHAT_PANE, "max_tokens_adj"), 64);
  GtkTextView *input = GTK_TEXT_VIEW(child(pane, JF_TYPE_CHAT_PANE, "input_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(input), "Tell me a long story.", -1);
  ChatWatch cw = { 0 };
  cw.streamed = g_string_new(NULL);
  cw.pane = pane;
  gulong h1 = g_signal_connect_after(engine, "chat-text", G_CALLBACK(on_first_piece_stop), &cw);
  gulong h2 = g_signal_connect_after(engine, "chat-finished", G_CALLBACK(on_chat_finished), &cw);
  guint n0 = jf_chat_pane_get_n_messages(pane);
  jf_engine_set_lockstep(engine, TRUE);
  g_assert_true(jf_chat_pane_send(pane));
  wait_for(chat_done, &cw, "the stopped answer");
  jf_engine_set_lockstep(engine, FALSE);
  g_signal_handler_disconnect(engine, h1);
  g_signal_handler_disconnect(engine, h2);
  g_assert_no_error(cw.error);
  g_assert_cmpuint(cw.pieces, ==, 1);
  g_assert_false(g_action_group_get_action_enabled(G_ACTION_GROUP(win), "stop"));
  JfChatMessage *a = jf_chat_pane_get_message(pane, n0 + 1);
  g_assert_nonnull(a);
  GtkWidget *note = child(a, JF_TYPE_CHAT_MESSAGE, "note_label");
  g_assert_true(gtk_widget_get_visible(note));
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(note)), ==, "Stopped");
  g_string_free(cw.streamed, TRUE);
  g_free(cw.answer);
}

static gboolean chat_restored(gpointer data)
{
  return jf_chat_pane_is_restored(data);
}

/* What happens on the new engine after a restart: the pane has it read the conversation back,
 * and a question sent while it does so waits for it. */
typedef struct {
  JfChatPane *pane;
  JfEngine *engine;
  gboolean saw_status, sent, restored, restore_first, chat_finished;
  guint dropped, remembered, tokens_restored, tokens_answered;
  GError *error;
} RestartWatch;

static void on_replaying(JfChatPane *pane, GParamSpec *pspec, RestartWatch *rw)
{
  (void)pspec;
  if (!jf_chat_pane_is_replaying(pane) || rw->sent)
    return;
  rw->saw_status = gtk_widget_get_visible(child(pane, JF_TYPE_CHAT_PANE, "restore_box"));
  GtkTextView *input = GTK_TEXT_VIEW(child(pane, JF_TYPE_CHAT_PANE, "input_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(input), "And what else?", -1);
  /* a short answer: the turn then adds far fewer tokens than a fresh conversation has */
  GtkAdjustment *max_tokens = adjustment(pane, JF_TYPE_CHAT_PANE, "max_tokens_adj");
  double was = gtk_adjustment_get_value(max_tokens);
  gtk_adjustment_set_value(max_tokens, 4);
  rw->sent = jf_chat_pane_send(pane);
  gtk_adjustment_set_value(max_tokens, was);
}

static void on_restart_restored(JfEngine *e, guint job, GArray *flags, guint dropped, GError *error,
                                RestartWatch *rw)
{
  (void)job;
  rw->restored = TRUE;
  rw->restore_first = !rw->chat_finished;
  rw->dropped = dropped;
  for (guint i = 0; flags && i < flags->len; i++)
    rw->remembered += g_array_index(flags, gboolean, i);
  rw->tokens_restored = jf_engine_get_chat_tokens(e);
  if (error && !rw->error)
    rw->error = g_error_copy(error);
}

static void on_restart_answered(JfEngine *e, guint job, const char *answer, GError *error, RestartWatch *rw)
{
  (void)job;
  (void)answer;
  rw->chat_finished = TRUE;
  rw->tokens_answered = jf_engine_get_chat_tokens(e);
  if (error && !rw->error)
    rw->error = g_error_copy(error);
}

static gboolean restart_done(gpointer data)
{
  RestartWatch *rw = data;
  return rw->restored && rw->chat_finished && !jf_chat_pane_is_busy(rw->pane) && !jf_chat_pane_is_replaying(rw->pane) &&
         !jf_chat_pane_is_saving(rw->pane);
}

static guint count_dividers(JfChatPane *pane)
{
  guint n = 0;
  GtkWidget *box = child(pane, JF_TYPE_CHAT_PANE, "messages_box");
  for (GtkWidget *c = gtk_widget_get_first_child(box); c; c = gtk_widget_get_next_sibling(c))
    n += gtk_widget_has_css_class(c, "restored-divider");
  return n;
}

/* A new application instance on the same XDG folders finds the conversation again, and the
 * model remembers it: the next question continues it. */
static void test_restart(void)
{
  JfChatPane *pane = jf_window_get_chat_pane(win);
  guint n = jf_chat_pane_get_n_messages(pane);
  g_assert_cmpuint(n, >=, 2);
  GPtrArray *texts = g_ptr_array_new_with_free_func(g_free);
  for (guint i = 0; i < n; i++)
    g_ptr_array_add(texts, g_strdup(jf_chat_message_get_text(jf_chat_pane_get_message(pane, i))));
  guint images = jf_chat_message_get_n_images(jf_chat_pane_get_message(pane, 0));
  g_assert_cmpuint(images, ==, 1);
  guint tokens_before = jf_engine_get_chat_tokens(jf_application_get_engine(app));
  g_assert_cmpuint(tokens_before, >, 0);

  close_window(win);
  /* the new window and engine exist before the main loop runs again: watch them from the start */
  JfWindow *w2 = jf_application_get_window(app);
  RestartWatch rw = { 0 };
  rw.pane = jf_window_get_chat_pane(w2);
  rw.engine = jf_application_get_engine(app);
  gulong h0 = g_signal_connect(rw.pane, "notify::replaying", G_CALLBACK(on_replaying), &rw);
  gulong h1 = g_signal_connect_after(rw.engine, "chat-restore-finished", G_CALLBACK(on_restart_restored), &rw);
  gulong h2 = g_signal_connect_after(rw.engine, "chat-finished", G_CALLBACK(on_restart_answered), &rw);
  win = open_window();
  g_assert_true(win == w2);

  /* the model folders were remembered (the settings are read again for the new window) */
  g_assert_cmpstr(jf_application_get_settings(app)->model_dir, ==, model_dir);
  g_assert_cmpstr(jf_application_get_settings(app)->vae_dir, ==, vae_dir);
  JfChatPane *pane2 = jf_window_get_chat_pane(win);
  wait_for(chat_restored, pane2, "the conversation to be restored");
  wait_for(restart_done, &rw, "the conversation to be read back and the next question answered");
  g_signal_handler_disconnect(pane2, h0);
  g_signal_handler_disconnect(rw.engine, h1);
  g_signal_handler_disconnect(rw.engine, h2);
  g_assert_no_error(rw.error);
  /* the status line showed while it was read back; the question sent meanwhile waited for it */
  g_assert_true(rw.sent);
  g_assert_true(rw.saw_status);
  g_assert_false(gtk_widget_get_visible(child(pane2, JF_TYPE_CHAT_PANE, "restore_box")));
  g_assert_true(rw.restore_first);
  /* all of it is in the model's memory again (a size close to the first session's: answers are
   * encoded again from their text) and no divider says otherwise */
  g_test_message("conversation: %u tokens before the restart, %u read back, %u after the next answer",
                 tokens_before, rw.tokens_restored, rw.tokens_answered);
  g_assert_cmpuint(rw.dropped, ==, 0);
  g_assert_cmpuint(rw.remembered, ==, n);
  g_assert_cmpuint(rw.tokens_restored, >=, tokens_before * 3 / 4);
  g_assert_cmpuint(rw.tokens_restored, <=, tokens_before + n);
  g_assert_cmpuint(count_dividers(pane2), ==, 0);
  /* the next question continued the conversation: it added its own turn (about 16 tokens of
   * template and question, at most 4 of answer, EOS) on top of what was read back, where a fresh
   * conversation (system prompt, question, answer) would be smaller than what was read back */
  g_assert_cmpuint(rw.tokens_answered, >, rw.tokens_restored);
  g_assert_cmpuint(rw.tokens_answered - rw.tokens_restored, <=, 32);

  g_assert_cmpuint(jf_chat_pane_get_n_messages(pane2), ==, n + 2);
  for (guint i = 0; i < n; i++)
    g_assert_cmpstr(jf_chat_message_get_text(jf_chat_pane_get_message(pane2, i)), ==, g_ptr_array_index(texts, i));
  g_assert_cmpstr(jf_chat_message_get_text(jf_chat_pane_get_message(pane2, n)), ==, "And what else?");
  g_assert_cmpuint(jf_chat_message_get_n_images(jf_chat_pane_get_message(pane2, 0)), ==, 1);
  /* saved as remembered */
  {
    GError *error = NULL;
    g_autofree char *dir = jf_chat_store_dir();
    GPtrArray *entries = jf_chat_store_load(dir, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(entries->len, ==, n + 2);
    for (guint i = 0; i < entries->len; i++)
      g_assert_true(((JfChatEntry *)g_ptr_array_index(entries, i))->remembered);
    g_ptr_array_unref(entries);
  }
  /* the answer settings were remembered (the last ones set: greedy, 64 tokens) */
  g_assert_cmpfloat_with_epsilon(gtk_adjustment_get_value(adjustment(pane2, JF_TYPE_CHAT_PANE, "temperature_adj")), 0.0, 1e-9);
  g_assert_cmpfloat_with_epsilon(gtk_adjustment_get_value(adjustment(pane2, JF_TYPE_CHAT_PANE, "max_tokens_adj")), 64, 1e-9);
  /* the gallery came back from the Pictures folder too */
  g_assert_cmpuint(jf_gallery_strip_get_n_items(jf_canvas_pane_get_gallery(jf_window_get_canvas_pane(win))), >, 0);

  /* new chat clears it, on screen, on disk and in the model */
  g_action_group_activate_action(G_ACTION_GROUP(win), "new-chat", NULL);
  g_assert_cmpuint(jf_chat_pane_get_n_messages(pane2), ==, 0);
  jf_chat_pane_flush(pane2);
  wait_for(engine_idle, rw.engine, "the conversation to be reset");
  g_assert_cmpuint(jf_engine_get_chat_tokens(rw.engine), ==, 0);
  GError *error = NULL;
  g_autofree char *dir = jf_chat_store_dir();
  GPtrArray *entries = jf_chat_store_load(dir, &error);
  g_assert_no_error(error);
  g_assert_cmpuint(entries->len, ==, 0);
  g_ptr_array_unref(entries);
  g_ptr_array_unref(texts);
}

/* The engine's restore job on its own: a history longer than the context keeps its newest pairs
 * (room is left for the next turn), turns the model never saw are left out, a chat turn queued
 * behind it runs after it, and a cancelled one leaves an empty conversation. */
typedef struct {
  guint restores, chats;
  guint order;               /* 1 = restore finished first */
  guint dropped;
  GArray *flags;
  GError *error;
  guint tokens;
} EngineWatch;

static void on_watch_restored(JfEngine *e, guint job, GArray *flags, guint dropped, GError *error, EngineWatch *w)
{
  (void)job;
  w->restores++;
  if (!w->order)
    w->order = w->chats == 0 ? 1 : 2;
  w->dropped = dropped;
  if (w->flags)
    g_array_unref(w->flags);
  w->flags = flags ? g_array_copy(flags) : NULL;
  g_clear_error(&w->error);
  if (error)
    w->error = g_error_copy(error);
  w->tokens = jf_engine_get_chat_tokens(e);
}

static void on_watch_chat(JfEngine *e, guint job, const char *answer, GError *error, EngineWatch *w)
{
  (void)e;
  (void)job;
  (void)answer;
  g_assert_no_error(error);
  w->chats++;
}

static void test_restore_drop(void)
{
  JfEngine *engine = jf_application_get_engine(app);
  wait_for(engine_idle, engine, "the engine to be idle");
  EngineWatch w = { 0 };
  gulong h1 = g_signal_connect(engine, "chat-restore-finished", G_CALLBACK(on_watch_restored), &w);
  gulong h2 = g_signal_connect(engine, "chat-finished", G_CALLBACK(on_watch_chat), &w);
  GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  const guint pairs = 80;  /* ~64 tokens each with the tiny tokenizer: more than the default 4096-token context */
  for (guint i = 0; i < pairs; i++) {
    g_autofree char *q = g_strdup_printf("Question %u: what happened next in the story?", i);
    g_ptr_array_add(entries, jf_chat_entry_new("user", q));
    JfChatEntry *a = jf_chat_entry_new("assistant", "Then the traveller walked on along the river until night fell.");
    if (i == pairs - 2) {
      /* a turn that failed before any answer: never in the model's memory */
      g_free(a->text);
      a->text = g_strdup("");
      a->stopped = TRUE;
    }
    g_ptr_array_add(entries, a);
  }
  g_ptr_array_add(entries, jf_chat_entry_new("user", "An unanswered question"));
  guint job = jf_engine_chat_restore(engine, entries);
  g_assert_cmpuint(job, >, 0);
  JfSampling s = sampler_defaults();
  s.temperature = 0;
  s.max_new_tokens = 4;
  jf_engine_chat_send(engine, "And then?", NULL, &s);
  wait_for(engine_idle, engine, "the restore and the question after it");
  g_assert_no_error(w.error);
  g_assert_cmpuint(w.restores, ==, 1);
  g_assert_cmpuint(w.chats, ==, 1);
  g_assert_cmpuint(w.order, ==, 1);
  guint capacity = jf_engine_get_chat_capacity(engine);
  g_test_message("%u pairs: %u dropped, %u of %u tokens in use", pairs, w.dropped, w.tokens, capacity);
  g_assert_cmpuint(w.dropped, >, 0);
  g_assert_cmpuint(w.dropped, <, pairs - 2);
  g_assert_cmpuint(w.tokens, >, 0);
  g_assert_cmpuint(w.tokens, <=, capacity - capacity / 4);
  g_assert_nonnull(w.flags);
  g_assert_cmpuint(w.flags->len, ==, entries->len);
  for (guint i = 0; i < entries->len; i++) {
    gboolean want = i >= 2 * w.dropped && i / 2 != pairs - 2 && i < 2 * pairs;
    g_assert_cmpint(g_array_index(w.flags, gboolean, i), ==, want);
  }
  /* room was left: the question after it was answered in the same conversation */
  g_assert_cmpuint(jf_engine_get_chat_tokens(engine), >, w.tokens);

  /* cancelled: an error, and the model remembers nothing */
  job = jf_engine_chat_restore(engine, entries);
  jf_engine_cancel(engine, job);
  wait_for(engine_idle, engine, "the cancelled restore");
  g_assert_cmpuint(w.restores, ==, 2);
  g_assert_error(w.error, G_IO_ERROR, G_IO_ERROR_CANCELLED);
  g_assert_null(w.flags);
  g_assert_cmpuint(jf_engine_get_chat_tokens(engine), ==, 0);

  g_signal_handler_disconnect(engine, h1);
  g_signal_handler_disconnect(engine, h2);
  g_clear_error(&w.error);
  g_clear_pointer(&w.flags, g_array_unref);
  g_ptr_array_unref(entries);
}

static gboolean pane_settled(gpointer data)
{
  JfChatPane *pane = data;
  return jf_chat_pane_is_restored(pane) && !jf_chat_pane_is_replaying(pane) && !jf_chat_pane_is_saving(pane) &&
         jf_engine_n_pending(jf_application_get_engine(app)) == 0;
}

/* Messages shown before the (only) divider; G_MAXUINT if there is none. */
static guint messages_before_divider(JfChatPane *pane)
{
  guint n = 0;
  GtkWidget *box = child(pane, JF_TYPE_CHAT_PANE, "messages_box");
  for (GtkWidget *c = gtk_widget_get_first_child(box); c; c = gtk_widget_get_next_sibling(c)) {
    if (gtk_widget_has_css_class(c, "restored-divider"))
      return n;
    n += JF_IS_CHAT_MESSAGE(c);
  }
  return G_MAXUINT;
}

/* A saved conversation longer than the context: after a restart (and again after the model is
 * loaded again) the pane marks where the model's memory begins, once. */
static void test_restore_divider(void)
{
  GPtrArray *entries = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  const guint pairs = 80;  /* ~64 tokens each with the tiny tokenizer: more than the default 4096-token context */
  for (guint i = 0; i < pairs; i++) {
    g_autofree char *q = g_strdup_printf("Question %u: what happened next in the story?", i);
    g_ptr_array_add(entries, jf_chat_entry_new("user", q));
    g_ptr_array_add(entries, jf_chat_entry_new("assistant", "Then the traveller walked on along the river until night fell."));
  }
  JfChatPane *pane = jf_window_get_chat_pane(win);
  jf_chat_pane_flush(pane);
  close_window(win);
  GError *error = NULL;
  g_autofree char *dir = jf_chat_store_dir();
  g_assert_true(jf_chat_store_save(dir, entries, &error));
  g_assert_no_error(error);

  JfWindow *w2 = jf_application_get_window(app);
  EngineWatch w = { 0 };
  JfEngine *engine = jf_application_get_engine(app);
  gulong h = g_signal_connect(engine, "chat-restore-finished", G_CALLBACK(on_watch_restored), &w);
  win = open_window();
  g_assert_true(win == w2);
  pane = jf_window_get_chat_pane(win);
  wait_for(pane_settled, pane, "the long conversation to be read back");
  g_assert_no_error(w.error);
  g_assert_cmpuint(w.restores, ==, 1);
  g_assert_cmpuint(w.dropped, >, 0);
  g_assert_cmpuint(jf_chat_pane_get_n_messages(pane), ==, 2 * pairs);
  g_assert_cmpuint(count_dividers(pane), ==, 1);
  g_assert_cmpuint(messages_before_divider(pane), ==, 2 * w.dropped);

  /* the model is loaded again: read back again, still one divider */
  jf_window_open_model(win, model_dir, vae_dir);
  wait_for(engine_loaded, engine, "the model to load again");
  wait_for(pane_settled, pane, "the conversation to be read back again");
  g_assert_no_error(w.error);
  g_assert_cmpuint(w.restores, ==, 2);
  g_assert_cmpuint(count_dividers(pane), ==, 1);
  g_assert_cmpuint(messages_before_divider(pane), ==, 2 * w.dropped);
  g_signal_handler_disconnect(engine, h);
  g_clear_pointer(&w.flags, g_array_unref);

  g_action_group_activate_action(G_ACTION_GROUP(win), "new-chat", NULL);
  g_assert_cmpuint(count_dividers(pane), ==, 0);
  jf_chat_pane_flush(pane);
  g_ptr_array_unref(entries);
}

/* --- language model weights (8-bit) ---------------------------------------------------------- */

/* The choice survives the keyfile; a value the app does not know falls back to full precision. */
static void test_weights_setting(void)
{
  JfSettings *live = jf_application_get_settings(app);
  {
    g_autoptr(JfSettings) d = jf_settings_new();
    g_assert_cmpint(d->weights, ==, JF_WEIGHTS_BF16);
  }
  g_autoptr(JfSettings) s = jf_settings_load();
  g_assert_cmpint(s->weights, ==, JF_WEIGHTS_BF16);
  s->weights = JF_WEIGHTS_Q8_0;
  GError *error = NULL;
  g_assert_true(jf_settings_save(s, &error));
  g_assert_no_error(error);
  g_autofree char *path = jf_settings_path();
  g_autofree char *text = NULL;
  g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
  g_assert_nonnull(strstr(text, "weights=q8_0"));
  {
    g_autoptr(JfSettings) back = jf_settings_load();
    g_assert_cmpint(back->weights, ==, JF_WEIGHTS_Q8_0);
    /* the rest came back too */
    g_assert_cmpstr(back->model_dir, ==, s->model_dir);
  }
  GKeyFile *kf = g_key_file_new();
  g_assert_true(g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL));
  g_key_file_set_string(kf, "Model", "weights", "int3");
  g_assert_true(g_key_file_save_to_file(kf, path, NULL));
  g_key_file_free(kf);
  {
    g_autoptr(JfSettings) back = jf_settings_load();
    g_assert_cmpint(back->weights, ==, JF_WEIGHTS_BF16);
  }
  /* leave the file as the application has it */
  g_assert_true(jf_settings_save(live, &error));
  g_assert_no_error(error);
}

typedef struct {
  guint loads;
  guint64 memory;        /* right after the load, before any chat or generation */
  JfWeightFormat weights;
  GError *error;
} LoadWatch;

static void on_load_watch(JfEngine *e, GError *error, LoadWatch *lw)
{
  lw->loads++;
  lw->memory = jf_engine_get_memory(e);
  lw->weights = jf_engine_get_weights(e);
  g_clear_error(&lw->error);
  if (error)
    lw->error = g_error_copy(error);
}

typedef struct {
  JfWindow *win;
  char *title;   /* the window title when the pane started reading the conversation back */
} TitleWatch;

static void on_replaying_title(JfChatPane *pane, GParamSpec *pspec, TitleWatch *tw)
{
  (void)pspec;
  if (jf_chat_pane_is_replaying(pane) && !tw->title)
    tw->title = g_strdup(gtk_window_get_title(GTK_WINDOW(tw->win)));
}

static JfPreferencesWindow *find_preferences(void)
{
  for (GList *l = gtk_application_get_windows(GTK_APPLICATION(app)); l; l = l->next)
    if (JF_IS_PREFERENCES_WINDOW(l->data))
      return l->data;
  return NULL;
}

static gboolean prefs_gone(gpointer data)
{
  (void)data;
  return find_preferences() == NULL;
}

/* Chosen in the preferences while the model is loaded: the window offers to reload it, the
 * reload uses 8-bit weights and the memory shown shrinks. Switching back while an image is being
 * made waits for the image. */
static void test_weights_reload(void)
{
  JfEngine *engine = jf_application_get_engine(app);
  JfSettings *settings = jf_application_get_settings(app);
  JfChatPane *chat = jf_window_get_chat_pane(win);
  wait_for(engine_idle, engine, "the engine to be idle");
  g_assert_cmpint(jf_engine_get_weights(engine), ==, JF_WEIGHTS_BF16);
  guint64 saving = jf_engine_get_q8_saving(engine);
  g_assert_cmpuint(saving, >, 0);

  /* a conversation, so that the reload has it read back */
  jf_window_show_page(win, "chat");
  gtk_adjustment_set_value(adjustment(chat, JF_TYPE_CHAT_PANE, "temperature_adj"), 0.0);
  gtk_adjustment_set_value(adjustment(chat, JF_TYPE_CHAT_PANE, "max_tokens_adj"), 4);
  GtkTextView *input = GTK_TEXT_VIEW(child(chat, JF_TYPE_CHAT_PANE, "input_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(input), "Say hello.", -1);
  g_assert_true(jf_chat_pane_send(chat));
  wait_for(pane_settled, chat, "the answer");
  g_assert_cmpuint(jf_chat_pane_get_n_messages(chat), ==, 2);

  /* the preferences: full precision chosen, the note names the saving for this model */
  g_action_group_activate_action(G_ACTION_GROUP(app), "preferences", NULL);
  JfPreferencesWindow *prefs = find_preferences();
  g_assert_nonnull(prefs);
  GtkDropDown *dd = GTK_DROP_DOWN(child(prefs, JF_TYPE_PREFERENCES_WINDOW, "weights_dropdown"));
  GtkLabel *note = GTK_LABEL(child(prefs, JF_TYPE_PREFERENCES_WINDOW, "weights_note"));
  GtkWidget *reload = child(prefs, JF_TYPE_PREFERENCES_WINDOW, "reload_button");
  g_assert_cmpuint(gtk_drop_down_get_selected(dd), ==, 0);
  g_autofree char *saving_text = g_format_size(saving);
  g_assert_nonnull(strstr(gtk_label_get_text(note), saving_text));
  g_assert_false(gtk_widget_has_css_class(reload, "suggested-action"));

  /* 8-bit: applies at the next load; the note says so and Reload is the suggested action */
  gtk_drop_down_set_selected(dd, 1);
  g_assert_cmpint(settings->weights, ==, JF_WEIGHTS_Q8_0);
  g_assert_nonnull(strstr(gtk_label_get_text(note), "reload"));
  g_assert_true(gtk_widget_has_css_class(reload, "suggested-action"));
  /* back and forth: nothing to reload */
  gtk_drop_down_set_selected(dd, 0);
  g_assert_false(gtk_widget_has_css_class(reload, "suggested-action"));
  gtk_drop_down_set_selected(dd, 1);

  /* closed without reloading: saved, and the main window offers the reload */
  gtk_window_close(GTK_WINDOW(prefs));
  wait_for(prefs_gone, NULL, "the preferences to close");
  {
    g_autoptr(JfSettings) saved = jf_settings_load();
    g_assert_cmpint(saved->weights, ==, JF_WEIGHTS_Q8_0);
  }
  g_assert_cmpstr(jf_window_get_toast_action(win), ==, "app.reload-model");
  g_assert_nonnull(strstr(jf_window_get_toast(win), "8-bit"));
  g_assert_true(jf_engine_is_loaded(engine));
  g_assert_false(jf_engine_is_loading(engine));

  /* taking the offer reloads with 8-bit weights; the conversation is read back */
  LoadWatch lw = { 0 };
  TitleWatch tw = { win, NULL };
  gulong h1 = g_signal_connect_after(engine, "load-finished", G_CALLBACK(on_load_watch), &lw);
  gulong h2 = g_signal_connect_after(chat, "notify::replaying", G_CALLBACK(on_replaying_title), &tw);
  g_signal_emit_by_name(child(win, JF_TYPE_WINDOW, "toast_button"), "clicked");
  g_assert_true(jf_engine_is_loading(engine));
  g_assert_null(jf_window_get_toast_action(win));
  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(win)), ==, "JanusFlow — Loading");
  wait_for(engine_loaded, engine, "the model to load with 8-bit weights");
  wait_for(pane_settled, chat, "the conversation to be read back");
  g_assert_no_error(lw.error);
  g_assert_cmpuint(lw.loads, ==, 1);
  g_assert_cmpint(lw.weights, ==, JF_WEIGHTS_Q8_0);
  g_assert_cmpint(jf_engine_get_weights(engine), ==, JF_WEIGHTS_Q8_0);
  g_assert_cmpstr(jf_window_get_page(win), ==, "chat");
  /* the restore showed in the title like the other busy states, and is over */
  g_assert_cmpstr(tw.title, ==, "JanusFlow — Restoring Chat");
  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(win)), ==, "JanusFlow");
  g_assert_cmpuint(jf_engine_get_chat_tokens(engine), >, 0);
  /* the header shows the engine's figure */
  g_autofree char *mem_text = g_format_size(jf_engine_get_memory(engine));
  g_assert_cmpstr(gtk_label_get_text(GTK_LABEL(child(win, JF_TYPE_WINDOW, "memory_label"))), ==, mem_text);
  guint64 mem_q8 = lw.memory;

  /* back to full precision while an image is being made: the reload waits for it */
  settings->weights = JF_WEIGHTS_BF16;
  JfCanvasPane *canvas = jf_window_get_canvas_pane(win);
  jf_window_show_page(win, "create");
  jf_canvas_pane_set_prompt(canvas, "a red square");
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(canvas, JF_TYPE_CANVAS_PANE, "steps_spin")), 4);
  GenWatch gw;
  gen_watch_init(&gw);
  gulong h3 = g_signal_connect_after(engine, "gen-finished", G_CALLBACK(on_gen_finished), &gw);
  g_assert_true(jf_canvas_pane_generate(canvas));
  g_action_group_activate_action(G_ACTION_GROUP(app), "reload-model", NULL);
  g_assert_true(jf_window_is_reload_pending(win));
  g_assert_nonnull(strstr(jf_window_get_toast(win), "reloaded when"));
  g_assert_false(jf_engine_is_loading(engine));
  g_assert_true(jf_canvas_pane_is_busy(canvas));
  wait_for(gen_done, &gw, "the image");
  g_assert_no_error(gw.error);
  g_assert_cmpuint(gw.n_images, ==, 1);
  wait_for(engine_loaded, engine, "the model to load with full-precision weights");
  wait_for(pane_settled, chat, "the conversation to be read back");
  g_assert_false(jf_window_is_reload_pending(win));
  g_assert_no_error(lw.error);
  g_assert_cmpuint(lw.loads, ==, 2);
  g_assert_cmpint(lw.weights, ==, JF_WEIGHTS_BF16);
  g_test_message("model memory right after loading: %" G_GUINT64_FORMAT " bytes with bf16, %" G_GUINT64_FORMAT
                 " with q8_0 (the weights' tensor table says %" G_GUINT64_FORMAT " less)",
                 lw.memory, mem_q8, saving);
  /* the difference is the weights' (allocations round up a little) */
  g_assert_cmpuint(mem_q8, <, lw.memory);
  g_assert_cmpuint(lw.memory - mem_q8, >=, saving / 2);
  g_assert_cmpuint(lw.memory - mem_q8, <=, saving * 2);

  g_signal_handler_disconnect(engine, h1);
  g_signal_handler_disconnect(chat, h2);
  g_signal_handler_disconnect(engine, h3);
  gen_watch_clear(&gw);
  g_free(tw.title);
  g_clear_error(&lw.error);
  jf_window_show_page(win, "chat");
  g_action_group_activate_action(G_ACTION_GROUP(win), "new-chat", NULL);
  jf_chat_pane_flush(chat);
  wait_for(engine_idle, engine, "the conversation to be reset");
}

/* Loads the model on `device` with env=value set while the engine opens the GPU (a new device
 * selector makes it open it again), and checks the load failed for lack of device memory and
 * left the setup page up. lw keeps watching loads until the returned handler is disconnected. */
static gulong load_out_of_memory(const char *device, const char *env, const char *value, LoadWatch *lw)
{
  JfEngine *engine = jf_application_get_engine(app);
  JfSettings *settings = jf_application_get_settings(app);
  g_free(settings->device);
  settings->device = g_strdup(device);
  g_setenv(env, value, TRUE);
  gulong h = g_signal_connect_after(engine, "load-finished", G_CALLBACK(on_load_watch), lw);
  jf_window_open_model(win, model_dir, vae_dir);
  wait_for(engine_loaded, engine, "the load to fail");
  g_unsetenv(env);
  g_assert_error(lw->error, VKRT_ERROR, VKRT_ERROR_OOM);
  g_assert_false(jf_engine_is_loaded(engine));
  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(win)), ==, "JanusFlow — Setup");
  GtkLabel *status = GTK_LABEL(child(jf_window_get_setup_page(win), JF_TYPE_SETUP_PAGE, "status_label"));
  g_test_message("setup page: %s", gtk_label_get_text(status));
  return h;
}

/* A model that does not fit with full-precision weights: the setup page offers 8-bit ones, and
 * taking the offer loads the model (and remembers the choice). The out-of-memory error is
 * injected (JANUSFLOW_FAIL_ALLOC, read when the engine opens the GPU: a new device selector
 * makes it open it again). */
static void test_weights_fit_offer(void)
{
  JfEngine *engine = jf_application_get_engine(app);
  JfSettings *settings = jf_application_get_settings(app);
  JfSetupPage *setup = jf_window_get_setup_page(win);
  wait_for(engine_idle, engine, "the engine to be idle");
  g_assert_cmpint(settings->weights, ==, JF_WEIGHTS_BF16);
  LoadWatch lw = { 0 };
  gulong h = load_out_of_memory("0", "JANUSFLOW_FAIL_ALLOC", "1", &lw);
  GtkLabel *status = GTK_LABEL(child(setup, JF_TYPE_SETUP_PAGE, "status_label"));
  g_assert_nonnull(strstr(gtk_label_get_text(status), "injected failure"));
  g_assert_nonnull(strstr(gtk_label_get_text(status), "8-bit"));
  g_autofree char *saving_text = g_format_size(jf_engine_get_q8_saving(engine));
  g_assert_nonnull(strstr(gtk_label_get_text(status), saving_text));
  g_assert_null(strstr(gtk_label_get_text(status), "--weights"));
  g_assert_cmpstr(jf_setup_page_get_error_action(setup), ==, "win.load-8bit");
  GtkWidget *button = child(setup, JF_TYPE_SETUP_PAGE, "error_button");
  g_assert_true(gtk_widget_get_visible(button));

  g_signal_emit_by_name(button, "clicked");
  g_assert_true(jf_engine_is_loading(engine));
  g_assert_null(jf_setup_page_get_error_action(setup));
  wait_for(engine_loaded, engine, "the model to load with 8-bit weights");
  g_assert_no_error(lw.error);
  g_assert_cmpint(lw.weights, ==, JF_WEIGHTS_Q8_0);
  g_assert_true(jf_engine_can_generate(engine));
  g_assert_cmpint(settings->weights, ==, JF_WEIGHTS_Q8_0);
  {
    g_autoptr(JfSettings) saved = jf_settings_load();
    g_assert_cmpint(saved->weights, ==, JF_WEIGHTS_Q8_0);
  }
  g_assert_cmpstr(gtk_window_get_title(GTK_WINDOW(win)), ==, "JanusFlow");
  /* a quick answer with 8-bit weights */
  JfChatPane *chat = jf_window_get_chat_pane(win);
  wait_for(pane_settled, chat, "the chat pane");
  ChatWatch cw = { 0 };
  gulong hc = g_signal_connect_after(engine, "chat-finished", G_CALLBACK(on_chat_finished), &cw);
  GtkTextView *input = GTK_TEXT_VIEW(child(chat, JF_TYPE_CHAT_PANE, "input_view"));
  gtk_text_buffer_set_text(gtk_text_view_get_buffer(input), "Say hello.", -1);
  g_assert_true(jf_chat_pane_send(chat));
  wait_for(pane_settled, chat, "the answer");
  g_assert_true(cw.finished);
  g_assert_no_error(cw.error);
  g_assert_nonnull(cw.answer);
  g_assert_cmpuint(jf_chat_pane_get_n_messages(chat), ==, 2);
  g_signal_handler_disconnect(engine, hc);
  g_free(cw.answer);
  g_signal_handler_disconnect(engine, h);
  g_clear_error(&lw.error);
  /* the next load picks the device automatically again */
  g_clear_pointer(&settings->device, g_free);
}

/* A model too big even with 8-bit weights: the setup page says how much each would need and
 * offers nothing it cannot keep (no 8-bit button). A small GPU is stood in for by
 * JANUSFLOW_DEVICE_HEAP, read when the engine opens the GPU (a new device selector). */
static void test_weights_do_not_fit(void)
{
  JfEngine *engine = jf_application_get_engine(app);
  JfSettings *settings = jf_application_get_settings(app);
  JfSetupPage *setup = jf_window_get_setup_page(win);
  wait_for(engine_idle, engine, "the engine to be idle");
  settings->weights = JF_WEIGHTS_BF16;
  LoadWatch lw = { 0 };
  /* by name: a selector the engine has not opened yet */
  gulong h = load_out_of_memory("llvmpipe", "JANUSFLOW_DEVICE_HEAP", "100k", &lw);
  g_assert_false(jf_engine_get_q8_fits(engine));
  GtkLabel *status = GTK_LABEL(child(setup, JF_TYPE_SETUP_PAGE, "status_label"));
  const char *text = gtk_label_get_text(status);
  g_assert_nonnull(strstr(text, "100.0 KiB"));
  g_assert_nonnull(strstr(text, "with 8-bit weights it would still need"));
  /* the command line's hints in the window's terms */
  g_assert_null(strstr(text, "janusflow info"));
  g_assert_nonnull(strstr(text, "(Preferences, Device)"));
  g_assert_cmpstr(jf_setup_page_get_error_action(setup), !=, "win.load-8bit");
  g_assert_cmpint(settings->weights, ==, JF_WEIGHTS_BF16);
  g_signal_handler_disconnect(engine, h);
  g_clear_error(&lw.error);

  /* back to the real device: the model loads again */
  g_clear_pointer(&settings->device, g_free);
  lw = (LoadWatch){ 0 };
  h = g_signal_connect_after(engine, "load-finished", G_CALLBACK(on_load_watch), &lw);
  jf_window_open_model(win, model_dir, vae_dir);
  wait_for(engine_loaded, engine, "the model to load");
  g_assert_no_error(lw.error);
  g_assert_true(jf_engine_is_loaded(engine));
  g_signal_handler_disconnect(engine, h);
}

/* Closing the window during a run stops it and joins the worker (ASan checks for leaks). */
static void test_close_during_run(void)
{
  JfCanvasPane *pane = jf_window_get_canvas_pane(win);
  JfEngine *engine = g_object_ref(jf_application_get_engine(app));
  jf_window_show_page(win, "create");
  jf_canvas_pane_set_prompt(pane, "a long run that is interrupted");
  gtk_spin_button_set_value(GTK_SPIN_BUTTON(child(pane, JF_TYPE_CANVAS_PANE, "steps_spin")), 50);
  g_assert_true(jf_canvas_pane_generate(pane));
  spin(300);
  g_assert_true(jf_canvas_pane_is_busy(pane));
  close_window(win);
  win = NULL;
  /* the worker has been joined: the engine accepts no work and reports nothing */
  g_assert_cmpuint(jf_engine_n_pending(engine), <=, 1);
  g_object_unref(engine);
}

static void rm_rf(const char *path)
{
  if (g_file_test(path, G_FILE_TEST_IS_DIR) && !g_file_test(path, G_FILE_TEST_IS_SYMLINK)) {
    GDir *d = g_dir_open(path, 0, NULL);
    const char *name;
    while (d && (name = g_dir_read_name(d))) {
      g_autofree char *sub = g_build_filename(path, name, NULL);
      rm_rf(sub);
    }
    if (d)
      g_dir_close(d);
    g_rmdir(path);
  } else {
    g_unlink(path);
  }
}

static gboolean run_tests(gpointer data)
{
  int *rc = data;
  win = open_window();
  *rc = g_test_run();
  if (win)
    close_window(win);
  g_application_release(G_APPLICATION(app));
  return G_SOURCE_REMOVE;
}

static void skip_no_display(void)
{
  g_test_skip("no display (run under xvfb-run)");
}

int main(int argc, char **argv)
{
  /* everything the app writes goes below one temporary folder */
  tmp_root = g_dir_make_tmp("jf-test-ui-XXXXXX", NULL);
  g_assert_nonnull(tmp_root);
  const char *subs[] = { "config", "data", "home", "home/Pictures", NULL };
  for (int i = 0; subs[i]; i++) {
    g_autofree char *d = g_build_filename(tmp_root, subs[i], NULL);
    g_mkdir_with_parents(d, 0700);
  }
  /* Mesa's shader cache stays where it was (HOME changes below): a cold cache costs a minute */
  if (!g_getenv("MESA_SHADER_CACHE_DIR"))
    g_setenv("MESA_SHADER_CACHE_DIR", g_get_user_cache_dir(), TRUE);
  g_autofree char *cfg = g_build_filename(tmp_root, "config", NULL);
  g_autofree char *data = g_build_filename(tmp_root, "data", NULL);
  g_autofree char *home = g_build_filename(tmp_root, "home", NULL);
  g_setenv("XDG_CONFIG_HOME", cfg, TRUE);
  g_setenv("XDG_DATA_HOME", data, TRUE);
  g_setenv("HOME", home, TRUE);
  g_autofree char *dirs = g_build_filename(cfg, "user-dirs.dirs", NULL);
  g_autofree char *dirs_text = g_strdup_printf("XDG_PICTURES_DIR=\"%s/Pictures\"\n", home);
  g_file_set_contents(dirs, dirs_text, -1, NULL);
  g_setenv("GTK_A11Y", "none", FALSE);
  g_setenv("GSK_RENDERER", "cairo", FALSE);

  const char *td = g_getenv("JF_TEST_DATA");
  if (!td) {
    g_printerr("JF_TEST_DATA is not set\n");
    return 1;
  }
  model_dir = g_build_filename(td, "tiny", "janusflow", NULL);
  vae_dir = g_build_filename(td, "tiny", "vae", NULL);
  chat_png = g_build_filename(td, "tiny", "inputs", "chat.png", NULL);

  g_test_init(&argc, &argv, NULL);
  if (!gtk_init_check()) {
    g_test_add_func("/ui/skipped", skip_no_display);
    int rc = g_test_run();
    rm_rf(tmp_root);
    return rc;
  }
  g_test_add_func("/ui/1-shell-accels", test_accels);
  g_test_add_func("/ui/2-setup-check", test_setup_check);
  g_test_add_func("/ui/3-canvas-generate", test_generate);
  g_test_add_func("/ui/4-canvas-steering", test_steering);
  g_test_add_func("/ui/5-canvas-stop", test_stop);
  g_test_add_func("/ui/6-canvas-restore-params", test_restore_params);
  g_test_add_func("/ui/6b-copy-paste-ask", test_copy_paste_ask);
  g_test_add_func("/ui/7-chat-image", test_chat_image);
  g_test_add_func("/ui/8-chat-stop", test_chat_stop);
  g_test_add_func("/ui/9-chat-restart", test_restart);
  g_test_add_func("/ui/9b-chat-restore-drop", test_restore_drop);
  g_test_add_func("/ui/9c-chat-restore-divider", test_restore_divider);
  g_test_add_func("/ui/9d-weights-setting", test_weights_setting);
  g_test_add_func("/ui/9e-weights-reload", test_weights_reload);
  g_test_add_func("/ui/9f-weights-fit-offer", test_weights_fit_offer);
  g_test_add_func("/ui/9g-weights-do-not-fit", test_weights_do_not_fit);
  g_test_add_func("/ui/zz-close-during-run", test_close_during_run);

  /* the application runs for real (g_application_run, its command line, startup and
   * shutdown); the tests run from its main loop, which they iterate while they wait */
  int rc = 1;
  app = jf_application_new(G_APPLICATION_NON_UNIQUE);
  g_application_hold(G_APPLICATION(app));
  g_idle_add(run_tests, &rc);
  char *args[] = { "test-ui", "--model", model_dir, "--vae", vae_dir, NULL };
  int status = g_application_run(G_APPLICATION(app), 5, args);
  g_object_add_weak_pointer(G_OBJECT(app), (gpointer *)&app);
  g_object_unref(app);
  if (app)
    g_printerr("# the application was not freed\n");
  if (status != 0)
    rc = 1;

  /* leave no files behind */
  rm_rf(tmp_root);
  g_free(tmp_root);
  g_free(model_dir);
  g_free(vae_dir);
  g_free(chat_png);
  return rc;
}
