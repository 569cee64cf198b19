/* janusflow info: text and JSON listings, device selection errors (runs $JF_JANUSFLOW). */
#include <glib.h>
#include <json-glib/json-glib.h>
#include <string.h>
#include <sys/wait.h>

static int run(const char *const *args, char **out, char **err)
{
  const char *exe = g_getenv("JF_JANUSFLOW");
  g_assert_nonnull(exe);
  GPtrArray *argv = g_ptr_array_new();
  g_ptr_array_add(argv, (char *)exe);
  for (const char *const *a = args; *a; a++) g_ptr_array_add(argv, (char *)*a);
  g_ptr_array_add(argv, NULL);
  int status = -1;
  GError *e = NULL;
  g_assert_true(g_spawn_sync(NULL, (char **)argv->pdata, NULL, G_SPAWN_DEFAULT, NULL, NULL, out, err, &status, &e));
  g_assert_no_error(e);
  g_ptr_array_free(argv, TRUE);
  return g_spawn_check_wait_status(status, NULL) ? 0 : (WIFEXITED(status) ? WEXITSTATUS(status) : -1);
}

static void test_text(void)
{
  char *out = NULL, *err = NULL;
  const char *args[] = { "info", NULL };
  g_assert_cmpint(run(args, &out, &err), ==, 0);
  g_assert_nonnull(strstr(out, "device 0:"));
  g_assert_nonnull(strstr(out, "Chosen: device"));
  g_assert_nonnull(strstr(out, "push descriptors"));
  g_assert_nonnull(strstr(out, "max storage binding"));
  g_free(out);
  g_free(err);
}

static void test_json(void)
{
  char *out = NULL, *err = NULL;
  const char *args[] = { "info", "--json", "--device", "0", NULL };
  g_assert_cmpint(run(args, &out, &err), ==, 0);
  JsonParser *p = json_parser_new();
  GError *e = NULL;
  g_assert_true(json_parser_load_from_data(p, out, -1, &e));
  g_assert_no_error(e);
  JsonObject *root = json_node_get_object(json_parser_get_root(p));
  JsonArray *devs = json_object_get_array_member(root, "devices");
  g_assert_cmpuint(json_array_get_length(devs), >=, 1);
  JsonObject *d0 = json_array_get_object_element(devs, 0);
  g_assert_true(json_object_has_member(d0, "max_storage_range"));
  g_assert_true(json_object_has_member(d0, "subgroup_size"));
  JsonObject *chosen = json_object_get_object_member(root, "chosen");
  g_assert_cmpint(json_object_get_int_member(chosen, "index"), ==, 0);
  g_assert_nonnull(strstr(json_object_get_string_member(chosen, "reason"), "index"));
  JsonObject *feat = json_object_get_object_member(chosen, "features");
  g_assert_true(json_object_has_member(feat, "push_descriptor"));
  g_object_unref(p);
  g_free(out);
  g_free(err);
}

static void test_errors(void)
{
  char *out = NULL, *err = NULL;
  const char *bad_dev[] = { "info", "--device", "no-such-gpu", NULL };
  g_assert_cmpint(run(bad_dev, &out, &err), ==, 1);
  g_assert_true(g_str_has_prefix(err, "janusflow: "));
  g_assert_nonnull(strstr(err, "no-such-gpu"));
  g_free(out); g_free(err);
  const char *bad_opt[] = { "info", "--frobnicate", NULL };
  g_assert_cmpint(run(bad_opt, &out, &err), ==, 2);
  g_free(out); g_free(err);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/cli-info/text", test_text);
  g_test_add_func("/cli-info/json", test_json);
  g_test_add_func("/cli-info/errors", test_errors);
  return g_test_run();
}
