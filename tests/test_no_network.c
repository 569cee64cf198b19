/* The app opens no network listener and makes no network connection: janusflow info, chat and
 * generate run under `strace -f` (every thread and child) on the tiny model, and the trace of
 * socket calls may hold local sockets only (AF_UNIX, AF_NETLINK), never listen(), accept() or an
 * AF_INET / AF_INET6 / AF_PACKET socket. A control run of a program that does listen checks the trace is read right.
 * Skipped, saying why, when strace is not installed (.ci/install-deps installs it) or may not
 * trace here. */
#include <string.h>
#include <sys/wait.h>

#include <glib.h>
#include <glib/gstdio.h>

static const char *exe;
static char *strace_path, *tmp_dir, *model, *vae;

typedef struct {
  int n_calls;          /* socket-family calls seen */
  GString *offending;   /* the lines that break the rule */
  GString *all;         /* every traced line, for the log */
} Trace;

/* Runs argv under strace; returns FALSE (and skips the test) when strace cannot trace here. */
static gboolean run_traced(const char *const *args, Trace *t, int *exit_status)
{
  t->offending = g_string_new(NULL);
  t->all = g_string_new(NULL);
  if (!strace_path) {
    g_test_skip("strace is not installed (.ci/install-deps installs it)");
    return FALSE;
  }
  char *log = g_build_filename(tmp_dir, "strace.log", NULL);
  GPtrArray *argv = g_ptr_array_new();
  const char *pre[] = {strace_path, "-f", "-qq", "-o", log, "-e",
                       "trace=socket,socketpair,bind,listen,accept,accept4,connect", NULL};
  for (int i = 0; pre[i]; i++)
    g_ptr_array_add(argv, (gpointer)pre[i]);
  for (int i = 0; args[i]; i++)
    g_ptr_array_add(argv, (gpointer)args[i]);
  g_ptr_array_add(argv, NULL);
  char *cmd = g_strjoinv(" ", (char **)argv->pdata);
  g_test_message("running: %s", cmd);
  char *err = NULL;
  int status = 0;
  GError *e = NULL;
  /* LeakSanitizer stops the world with ptrace, which a traced process cannot: off for the child
   * (the ASan build checks leaks in every other test) */
  char **env = g_get_environ();
  const char *asan = g_environ_getenv(env, "ASAN_OPTIONS");
  char *asan_child = g_strdup_printf("%s%sdetect_leaks=0", asan ? asan : "", asan && *asan ? ":" : "");
  env = g_environ_setenv(env, "ASAN_OPTIONS", asan_child, TRUE);
  g_spawn_sync(NULL, (char **)argv->pdata, env, G_SPAWN_STDOUT_TO_DEV_NULL, NULL, NULL, NULL, &err, &status, &e);
  g_assert_no_error(e);
  g_strfreev(env);
  g_free(asan_child);
  gboolean ok = TRUE;
  /* strace's own complaints (no permission to trace in this container...) start with "strace: " */
  char **errl = g_strsplit(err, "\n", -1);
  for (int i = 0; ok && errl[i]; i++)
    if (g_str_has_prefix(errl[i], "strace: ")) {
      char *why = g_strdup_printf("strace cannot trace here (%s)", errl[i]);
      g_test_skip(why);
      g_free(why);
      ok = FALSE;
    }
  g_strfreev(errl);
  *exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  if (ok && *exit_status != 0)
    g_test_message("stderr: %s", err);

  t->n_calls = 0;
  char *text = NULL;
  if (ok && g_file_get_contents(log, &text, NULL, NULL)) {
    char **lines = g_strsplit(text, "\n", -1);
    for (int i = 0; lines[i]; i++) {
      const char *l = lines[i];
      if (!*l)
        continue;
      t->n_calls++;
      g_string_append_printf(t->all, "%s\n", l);
      gboolean bad = strstr(l, "listen(") || strstr(l, "accept(") || strstr(l, "accept4(") ||
                     strstr(l, "AF_INET") || strstr(l, "PF_INET") || strstr(l, "AF_PACKET");
      if (bad)
        g_string_append_printf(t->offending, "%s\n", l);
    }
    g_strfreev(lines);
  }
  g_free(text);
  g_unlink(log);
  g_free(cmd);
  g_free(err);
  g_free(log);
  g_ptr_array_unref(argv);
  return ok;
}

static void check_no_network(const char *const *args)
{
  Trace t;
  int status = -1;
  if (!run_traced(args, &t, &status)) {
    g_string_free(t.offending, TRUE);
    g_string_free(t.all, TRUE);
    return;
  }
  g_assert_cmpint(status, ==, 0);
  g_test_message("%d socket calls traced, all local:\n%s", t.n_calls, t.all->str);
  if (t.offending->len)
    g_error("network socket calls:\n%s", t.offending->str);
  g_string_free(t.offending, TRUE);
  g_string_free(t.all, TRUE);
}

/* The control: a program that binds and listens on TCP must be caught by the same reading. */
static void test_control(void)
{
  const char *py = "/usr/bin/python3";
  if (!g_file_test(py, G_FILE_TEST_IS_EXECUTABLE)) {
    g_test_skip("no /usr/bin/python3 for the control run");
    return;
  }
  Trace t;
  int status = -1;
  const char *args[] = {py, "-c",
                        "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1); s.close()",
                        NULL};
  if (!run_traced(args, &t, &status)) {
    g_string_free(t.offending, TRUE);
    g_string_free(t.all, TRUE);
    return;
  }
  g_assert_cmpint(status, ==, 0);
  g_test_message("control trace:\n%s", t.offending->str);
  g_assert_nonnull(strstr(t.offending->str, "listen("));
  g_assert_nonnull(strstr(t.offending->str, "AF_INET"));
  g_string_free(t.offending, TRUE);
  g_string_free(t.all, TRUE);
}

static void test_info(void) { check_no_network((const char *const[]){exe, "info", NULL}); }

static void test_chat(void)
{
  check_no_network((const char *const[]){exe, "chat", "-m", model, "-p", "Hello there", "-n", "4", NULL});
}

static void test_generate(void)
{
  char *out = g_build_filename(tmp_dir, "out.png", NULL);
  check_no_network((const char *const[]){exe, "generate", "-q", "-m", model, "--vae", vae, "-p", "a red cube",
                                         "--steps", "2", "--seed", "3", "-o", out, NULL});
  g_unlink(out);
  g_free(out);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  exe = g_getenv("JF_JANUSFLOW");
  const char *data = g_getenv("JF_TEST_DATA");
  if (!exe || !data) {
    g_printerr("JF_JANUSFLOW and JF_TEST_DATA must be set\n");
    return 1;
  }
  model = g_build_filename(data, "tiny", "janusflow", NULL);
  vae = g_build_filename(data, "tiny", "vae", NULL);
  strace_path = g_find_program_in_path("strace");
  GError *e = NULL;
  tmp_dir = g_dir_make_tmp("jf-no-network-XXXXXX", &e);
  g_assert_no_error(e);
  g_test_add_func("/no-network/control", test_control);
  g_test_add_func("/no-network/info", test_info);
  g_test_add_func("/no-network/chat", test_chat);
  g_test_add_func("/no-network/generate", test_generate);
  int rc = g_test_run();
  g_rmdir(tmp_dir);
  return rc;
}
