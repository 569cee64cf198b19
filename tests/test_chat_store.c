/* ui/jf-chat-store: the chat history file is read at every start, so a broken or hostile
 * chat.json must give an error (never a crash: json-glib recurses per nesting level), and must be
 * kept rather than overwritten by the next save. Needs no display. */
#include "jf-chat-store.h"
#include "test_util.h"
#include <glib/gstdio.h>
#include <string.h>

static guint count_prefix(const char *dir, const char *prefix)
{
  guint n = 0;
  GDir *d = g_dir_open(dir, 0, NULL);
  const char *name;
  while ((name = g_dir_read_name(d)))
    n += g_str_has_prefix(name, prefix);
  g_dir_close(d);
  return n;
}

/* Writes text as chat.json (and an image folder), loads it, expects an error mentioning `what`
 * and the file set aside with its images. */
static void expect_unreadable(const char *text, gsize len, const char *what)
{
  g_autofree char *dir = test_tmp_dir_new("jf-chat-store-XXXXXX");
  g_autofree char *path = g_build_filename(dir, "chat.json", NULL);
  g_autofree char *imgs = g_build_filename(dir, "chat-images", NULL);
  g_autofree char *img = g_build_filename(imgs, "x.png", NULL);
  g_assert_true(g_file_set_contents(path, text, (gssize)len, NULL));
  g_assert_cmpint(g_mkdir(imgs, 0700), ==, 0);
  g_assert_true(g_file_set_contents(img, "not really a png", -1, NULL));
  GError *err = NULL;
  GPtrArray *e = jf_chat_store_load(dir, &err);
  g_assert_null(e);
  g_assert_error(err, G_IO_ERROR, G_IO_ERROR_INVALID_DATA);
  g_test_message("%s", err->message);
  g_assert_nonnull(strstr(err->message, what));
  g_assert_nonnull(strstr(err->message, "kept as"));
  g_clear_error(&err);
  g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
  g_assert_false(g_file_test(imgs, G_FILE_TEST_EXISTS));
  g_assert_cmpuint(count_prefix(dir, "chat-unreadable-"), ==, 2);  /* the file and its images */
  /* a save now starts a fresh history and leaves the set-aside one alone */
  GPtrArray *fresh = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  g_ptr_array_add(fresh, jf_chat_entry_new("user", "hello again"));
  g_assert_true(jf_chat_store_save(dir, fresh, &err));
  g_assert_no_error(err);
  g_ptr_array_unref(fresh);
  g_assert_cmpuint(count_prefix(dir, "chat-unreadable-"), ==, 2);
  GPtrArray *back = jf_chat_store_load(dir, &err);
  g_assert_no_error(err);
  g_assert_cmpuint(back->len, ==, 1);
  g_ptr_array_unref(back);
  test_rm_rf(dir);
}

static void test_deep_nesting(void)
{
  /* 1 M levels: json-glib alone would recurse a million frames deep */
  gsize n = 1u << 20;
  char *t = g_malloc(2 * n + 32);
  gsize k = (gsize)g_snprintf(t, 32, "{\"messages\":");
  memset(t + k, '[', n);
  memset(t + k + n, ']', n);
  t[k + 2 * n] = '}';
  expect_unreadable(t, k + 2 * n + 1, "nests deeper than");
  g_free(t);
}

static void test_not_strict(void)
{
  const char *t = "{'messages': [ /* [[[[ */ ]}";
  expect_unreadable(t, strlen(t), "single quotes or comments");
}

static void test_not_json(void)
{
  const char *t = "{\"messages\": [ {\"role\": \"user\", \"text\": \"cut in the mid";
  expect_unreadable(t, strlen(t), "not valid JSON");
}

static void test_no_messages(void)
{
  const char *t = "[1, 2, 3]";
  expect_unreadable(t, strlen(t), "no \"messages\" array");
}

static void test_bad_utf8(void)
{
  const char t[] = "{\"messages\": [ {\"role\": \"user\", \"text\": \"\xff\xfe\"} ]}";
  expect_unreadable(t, sizeof t - 1, "UTF-8");
}

static void test_round_trip(void)
{
  g_autofree char *dir = test_tmp_dir_new("jf-chat-store-XXXXXX");
  GPtrArray *es = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  g_ptr_array_add(es, jf_chat_entry_new("user", "what is in \"this\" picture? [{"));
  g_ptr_array_add(es, jf_chat_entry_new("assistant", "a cat \xc3\xa9"));
  GError *err = NULL;
  g_assert_true(jf_chat_store_save(dir, es, &err));
  g_assert_no_error(err);
  GPtrArray *back = jf_chat_store_load(dir, &err);
  g_assert_no_error(err);
  g_assert_cmpuint(back->len, ==, 2);
  for (guint i = 0; i < 2; i++) {
    JfChatEntry *a = es->pdata[i], *b = back->pdata[i];
    g_assert_cmpstr(a->role, ==, b->role);
    g_assert_cmpstr(a->text, ==, b->text);
  }
  g_ptr_array_unref(es);
  g_ptr_array_unref(back);
  g_assert_cmpuint(count_prefix(dir, "chat-unreadable-"), ==, 0);
  test_rm_rf(dir);
}

int main(int argc, char **argv)
{
  g_test_init(&argc, &argv, NULL);
  g_test_add_func("/chat-store/round-trip", test_round_trip);
  g_test_add_func("/chat-store/deep-nesting", test_deep_nesting);
  g_test_add_func("/chat-store/not-strict", test_not_strict);
  g_test_add_func("/chat-store/not-json", test_not_json);
  g_test_add_func("/chat-store/no-messages", test_no_messages);
  g_test_add_func("/chat-store/bad-utf8", test_bad_utf8);
  return g_test_run();
}
