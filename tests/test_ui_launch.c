/* Launches the real janusflow binary ($JF_JANUSFLOW) on the display (Xvfb in CI) with the tiny
 * model, drives it with synthetic X input events (xdotool: XTEST), and takes screenshots
 * (ImageMagick import) of both panes into $JF_BUILD_DIR/ui-screenshots/ (and into
 * $JF_SCREENSHOT_DIR when set: that is how docs/screenshots/ are made).
 *
 * Without a window manager the window sits at the top left and gets the keyboard when the
 * pointer is over it. The window title says what the app is doing ("JanusFlow — Loading",
 * "JanusFlow — Answering", "JanusFlow — Generating", plain "JanusFlow" when idle); the test
 * waits on it instead of sleeping. */
#include <gtk/gtk.h>
#include <glib/gstdio.h>
#include <string.h>
#include <signal.h>
#include <sys/prctl.h>

#include "test_util.h"

static char *tmp_root, *shot_dir;

static char *run_capture(const char *const *argv, int *status)
{
  char *out = NULL;
  GError *error = NULL;
  if (!g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH | G_SPAWN_STDERR_TO_DEV_NULL, NULL, NULL, &out,
                    NULL, status, &error)) {
    g_test_message("%s: %s", argv[0], error->message);
    g_error_free(error);
    return NULL;
  }
  return out;
}

static gboolean run(const char *const *argv)
{
  int status = 0;
  g_autofree char *out = run_capture(argv, &status);
  return out && g_spawn_check_wait_status(status, NULL);
}

static void xdo(const char *a, const char *b, const char *c)
{
  const char *argv[] = { "xdotool", a, b, c, NULL };
  g_assert_true(run(argv));
}

static char *find_window(void)
{
  const char *argv[] = { "xdotool", "search", "--onlyvisible", "--name", "^JanusFlow", NULL };
  int status = 0;
  char *out = run_capture(argv, &status);
  if (!out || !*out) {
    g_free(out);
    return NULL;
  }
  char *nl = strchr(out, '\n');
  if (nl)
    *nl = 0;
  return out;
}

static char *window_name(const char *id)
{
  const char *argv[] = { "xdotool", "getwindowname", id, NULL };
  int status = 0;
  char *out = run_capture(argv, &status);
  if (out)
    g_strstrip(out);
  return out;
}

static void spin(int ms)
{
  gint64 end = g_get_monotonic_time() + (gint64)ms * 1000;
  while (g_get_monotonic_time() < end) {
    while (g_main_context_iteration(NULL, FALSE))
      ;
    g_usleep(5000);
  }
}

static gboolean process_exited(GSubprocess *proc)
{
  /* the identifier goes away once the child has been reaped */
  return g_subprocess_get_identifier(proc) == NULL;
}

/* The app must not outlive a failed test (it would hold the test's output pipe open). */
static void die_with_parent(gpointer data)
{
  (void)data;
  prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/* Gives a window the X input focus (there is no window manager to do it). */
static void focus_window(const char *id)
{
  const char *argv[] = { "xdotool", "windowfocus", "--sync", id, NULL };
  g_assert_true(run(argv));
}

/* Waits until the window title is `want`. A busy title ("JanusFlow — Answering") can come and go
 * between two polls when the work is quick (a warmed-up tiny model answers in tens of ms): given
 * `done` (evidence the work left on disk), the idle title with done() counts as having seen it,
 * and the polls are closer (each is an xdotool run, too many for the long idle waits). */
static void wait_title(const char *id, const char *want, GSubprocess *proc, int timeout_s, gboolean (*done)(void))
{
  gint64 end = g_get_monotonic_time() + (gint64)timeout_s * G_USEC_PER_SEC;
  for (;;) {
    g_autofree char *name = window_name(id);
    if (g_strcmp0(name, want) == 0 || (done && g_strcmp0(name, "JanusFlow") == 0 && done()))
      return;
    if (g_get_monotonic_time() > end)
      g_error("window title is '%s', waited %d s for '%s'", name ? name : "(none)", timeout_s, want);
    g_assert_false(process_exited(proc));
    spin(done ? 20 : 100);
  }
}

/* the answer to the typed question is in the saved chat */
static gboolean chat_answered(void)
{
  g_autofree char *path = g_build_filename(tmp_root, "data", "janusflow", "chat.json", NULL);
  g_autofree char *text = NULL;
  return g_file_get_contents(path, &text, NULL, NULL) && strstr(text, "Describe this picture") &&
         strstr(text, "\"assistant\"");
}

/* a generated image is in the gallery folder */
static gboolean image_saved(void)
{
  g_autofree char *dir = g_build_filename(tmp_root, "home", "Pictures", "JanusFlow", NULL);
  GDir *d = g_dir_open(dir, 0, NULL);
  gboolean found = FALSE;
  for (const char *n; d && !found && (n = g_dir_read_name(d));)
    found = g_str_has_suffix(n, ".png");
  if (d)
    g_dir_close(d);
  return found;
}

static void screenshot(const char *id, const char *name)
{
  g_autofree char *path = g_build_filename(shot_dir, name, NULL);
  /* the window alone (with its client-side shadow cut off by the frame extents) */
  const char *argv[] = { "import", "-window", id, path, NULL };
  g_assert_true(run(argv));
  GStatBuf st;
  g_assert_cmpint(g_stat(path, &st), ==, 0);
  g_assert_cmpint(st.st_size, >, 10000);
  g_test_message("screenshot: %s (%ld bytes)", path, (long)st.st_size);
  const char *extra = g_getenv("JF_SCREENSHOT_DIR");
  if (extra && *extra) {
    g_autofree char *dst = g_build_filename(extra, name, NULL);
    g_autofree char *data = NULL;
    gsize len = 0;
    g_assert_true(g_file_get_contents(path, &data, &len, NULL));
    g_assert_true(g_file_set_contents(dst, data, (gssize)len, NULL));
  }
}

/* Under LeakSanitizer: should a file chooser open (Ctrl+O), its sidebar goes through
 * libcloudproviders, which leaks a path string of its own (not ours to fix). The child gets
 * the suppressions in force plus that one library. */
static void add_lsan_suppressions(GSubprocessLauncher *l)
{
  const char *opts = g_getenv("LSAN_OPTIONS");
  g_autofree char *text = g_strdup("leak:libcloudproviders\n");
  g_auto(GStrv) parts = g_strsplit(opts ? opts : "", ":", -1);
  GString *rest = g_string_new(NULL);
  for (int i = 0; parts[i]; i++) {
    if (g_str_has_prefix(parts[i], "suppressions=")) {
      g_autofree char *old = NULL;
      if (g_file_get_contents(parts[i] + strlen("suppressions="), &old, NULL, NULL)) {
        g_autofree char *both = g_strconcat(old, "\n", text, NULL);
        g_free(text);
        text = g_steal_pointer(&both);
      }
    } else if (*parts[i]) {
      g_string_append_printf(rest, "%s:", parts[i]);
    }
  }
  g_autofree char *supp = g_build_filename(tmp_root, "lsan.supp", NULL);
  g_assert_true(g_file_set_contents(supp, text, -1, NULL));
  g_string_append_printf(rest, "suppressions=%s", supp);
  g_subprocess_launcher_setenv(l, "LSAN_OPTIONS", rest->str, TRUE);
  g_string_free(rest, TRUE);
}

static void test_launch(void)
{
  const char *exe = g_getenv("JF_JANUSFLOW"), *td = g_getenv("JF_TEST_DATA");
  if (!g_getenv("DISPLAY") || !exe || !td) {
    g_test_skip("needs DISPLAY, JF_JANUSFLOW and JF_TEST_DATA (run under xvfb-run meson test)");
    return;
  }
  g_autofree char *xdotool = g_find_program_in_path("xdotool");
  g_autofree char *import = g_find_program_in_path("import");
  if (!xdotool || !import) {
    g_test_skip("needs xdotool and ImageMagick's import");
    return;
  }
  g_autofree char *model = g_build_filename(td, "tiny", "janusflow", NULL);
  g_autofree char *vae = g_build_filename(td, "tiny", "vae", NULL);
  g_autofree char *picture = g_build_filename(td, "tiny", "inputs", "chat.png", NULL);
  if (!gtk_init_check()) {
    g_test_skip("cannot open the display");
    return;
  }
  GError *load_error = NULL;
  GdkTexture *texture = gdk_texture_new_from_filename(picture, &load_error);
  g_assert_no_error(load_error);
  gdk_clipboard_set_texture(gdk_display_get_clipboard(gdk_display_get_default()), texture);
  g_object_unref(texture);

  GSubprocessLauncher *l = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_NONE);
  /* Mesa's shader cache stays where it was (HOME changes below): a cold cache costs a minute */
  if (!g_getenv("MESA_SHADER_CACHE_DIR"))
    g_subprocess_launcher_setenv(l, "MESA_SHADER_CACHE_DIR", g_get_user_cache_dir(), TRUE);
  const char *subs[] = { "config", "data", "home" };
  const char *vars[] = { "XDG_CONFIG_HOME", "XDG_DATA_HOME", "HOME" };
  for (int i = 0; i < 3; i++) {
    g_autofree char *d = g_build_filename(tmp_root, subs[i], NULL);
    g_mkdir_with_parents(d, 0700);
    g_subprocess_launcher_setenv(l, vars[i], d, TRUE);
  }
  g_subprocess_launcher_setenv(l, "GSK_RENDERER", "cairo", FALSE);
  g_subprocess_launcher_setenv(l, "GTK_A11Y", "none", FALSE);
  /* short answers and runs, so the screenshots come quickly */
  g_autofree char *cfgdir = g_build_filename(tmp_root, "config", "janusflow", NULL);
  g_mkdir_with_parents(cfgdir, 0700);
  g_autofree char *ini = g_build_filename(cfgdir, "settings.ini", NULL);
  g_assert_true(g_file_set_contents(ini, "[Create]\nsteps=12\ncfg=2.5\nseed-mode=locked\nseed=7\n"
                                          "[Chat]\nmax-tokens=24\ntemperature=0\n", -1, NULL));

  g_subprocess_launcher_set_child_setup(l, die_with_parent, NULL, NULL);
  add_lsan_suppressions(l);
  GError *error = NULL;
  GSubprocess *proc = g_subprocess_launcher_spawn(l, &error, exe, "--model", model, "--vae", vae, NULL);
  g_assert_no_error(error);
  g_object_unref(l);

  char *id = NULL;
  gint64 end = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
  while (!(id = find_window())) {
    g_assert_false(process_exited(proc));
    g_assert_cmpint(g_get_monotonic_time(), <, end);
    g_usleep(100 * 1000);
  }
  g_test_message("window %s", id);
  wait_title(id, "JanusFlow", proc, 300, NULL);

  focus_window(id);
  /* Ctrl+V pastes the picture this test process holds on the clipboard: the app reads it
   * from us over the X selection, so keep our main loop running meanwhile */
  xdo("key", "--clearmodifiers", "ctrl+v");
  spin(1500);
  const char *type_q[] = { "xdotool", "type", "--delay", "20", "Describe this picture in 3 words.", NULL };
  g_assert_true(run(type_q));
  xdo("key", "--clearmodifiers", "Return");
  wait_title(id, "JanusFlow — Answering", proc, 30, chat_answered);
  wait_title(id, "JanusFlow", proc, 300, NULL);
  g_usleep(500 * 1000);
  screenshot(id, "chat.png");

  /* Alt+2: the Create page, with the prompt focused; Ctrl+Enter generates */
  xdo("key", "--clearmodifiers", "alt+2");
  g_usleep(500 * 1000);
  const char *type_p[] = { "xdotool", "type", "--delay", "20", "a lighthouse on a cliff at dawn, oil painting", NULL };
  g_assert_true(run(type_p));
  xdo("key", "--clearmodifiers", "ctrl+Return");
  wait_title(id, "JanusFlow — Generating", proc, 30, image_saved);
  wait_title(id, "JanusFlow", proc, 600, NULL);
  g_usleep(800 * 1000);
  screenshot(id, "canvas.png");

  /* Ctrl+Q quits cleanly */
  xdo("key", "--clearmodifiers", "ctrl+q");
  g_assert_true(g_subprocess_wait(proc, NULL, &error));
  g_assert_no_error(error);
  g_assert_true(g_subprocess_get_if_exited(proc));
  g_assert_cmpint(g_subprocess_get_exit_status(proc), ==, 0);
  /* the image was saved to the gallery, the chat to the data folder */
  g_autofree char *chat = g_build_filename(tmp_root, "data", "janusflow", "chat.json", NULL);
  g_assert_true(g_file_test(chat, G_FILE_TEST_EXISTS));
  g_object_unref(proc);
  g_free(id);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  tmp_root = test_tmp_dir_new("jf-test-ui-launch-XXXXXX");
  const char *bd = g_getenv("JF_BUILD_DIR");
  shot_dir = g_build_filename(bd ? bd : tmp_root, "ui-screenshots", NULL);
  g_mkdir_with_parents(shot_dir, 0755);
  g_test_add_func("/ui/launch", test_launch);
  int rc = g_test_run();
  test_rm_rf(tmp_root);
  g_free(tmp_root);
  g_free(shot_dir);
  return rc;
}
