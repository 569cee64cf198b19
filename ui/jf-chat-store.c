#include "jf-chat-store.h"
#include "jf-image-util.h"
#include "image.h"
#include "json_guard.h"
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

#define IMAGES_SUBDIR "chat-images"
/* chat.json is only ever written by us, but it lives in the user's data folder and is read at
 * every start: a broken or hostile one must give an error, not a stack overflow (json-glib
 * recurses per nesting level) or an unbounded read. Ours nests 3 deep. */
#define CHAT_MAX_FILE (64u << 20)
#define CHAT_MAX_DEPTH 16

static void unref_maybe(gpointer p)
{
  if (p)
    g_object_unref(p);
}

JfChatEntry *jf_chat_entry_new(const char *role, const char *text)
{
  JfChatEntry *e = g_new0(JfChatEntry, 1);
  e->role = g_strdup(role);
  e->text = g_strdup(text ? text : "");
  e->images = g_ptr_array_new_with_free_func(g_free);
  e->textures = g_ptr_array_new_with_free_func(unref_maybe);
  return e;
}

void jf_chat_entry_free(JfChatEntry *e)
{
  if (!e)
    return;
  g_free(e->role);
  g_free(e->text);
  g_ptr_array_unref(e->images);
  g_ptr_array_unref(e->textures);
  g_free(e);
}

JfChatEntry *jf_chat_entry_copy(const JfChatEntry *e)
{
  JfChatEntry *c = jf_chat_entry_new(e->role, e->text);
  for (guint i = 0; i < e->images->len; i++)
    g_ptr_array_add(c->images, g_strdup(g_ptr_array_index(e->images, i)));
  for (guint i = 0; i < e->textures->len; i++) {
    gpointer t = g_ptr_array_index(e->textures, i);
    g_ptr_array_add(c->textures, t ? g_object_ref(t) : NULL);
  }
  c->remembered = e->remembered;
  c->stopped = e->stopped;
  return c;
}

char *jf_chat_store_dir(void)
{
  return g_build_filename(g_get_user_data_dir(), "janusflow", NULL);
}

static GdkTexture *load_texture(const char *path)
{
  GError *error = NULL;
  JfImage *img = image_load(path, &error);
  if (!img) {
    g_message("chat history: %s", error->message);
    g_error_free(error);
    return NULL;
  }
  GdkTexture *t = jf_texture_from_image(img);
  image_free(img);
  return t;
}

/* A chat.json we cannot read is moved aside, not left to be overwritten by the next save: the
 * conversation in it is the user's, and they (or a later version) may still recover it. Returns
 * the name it now has (caller frees), or NULL if it could not be moved. */
static char *set_aside(const char *path)
{
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
  g_autofree char *dir = g_path_get_dirname(path);
  g_autofree char *name = g_strdup_printf("chat-unreadable-%s.json", stamp);
  char *dst = g_build_filename(dir, name, NULL);
  if (g_rename(path, dst) != 0) {
    g_free(dst);
    return NULL;
  }
  /* its images go with it: the next save removes every image chat.json does not name */
  g_autofree char *imgs = g_build_filename(dir, IMAGES_SUBDIR, NULL);
  g_autofree char *imgs_name = g_strdup_printf("chat-unreadable-%s-images", stamp);
  g_autofree char *imgs_dst = g_build_filename(dir, imgs_name, NULL);
  if (g_file_test(imgs, G_FILE_TEST_IS_DIR) && g_rename(imgs, imgs_dst) != 0)
    g_message("%s: could not be moved next to %s: %s", imgs, dst, g_strerror(errno));
  return dst;
}

/* Fails the load of an unreadable chat.json: sets it aside and says where it went. */
static GPtrArray *fail_unreadable(GPtrArray *out, const char *path, const char *why, GError **error)
{
  g_autofree char *kept = set_aside(path);
  if (kept)
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s (kept as %s)", path, why, kept);
  else
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: %s", path, why);
  g_ptr_array_unref(out);
  return NULL;
}

GPtrArray *jf_chat_store_load(const char *dir, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  g_autofree char *path = g_build_filename(dir, "chat.json", NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    return out;
  g_autofree char *text = NULL;
  gsize len = 0;
  GStatBuf st;
  if (g_stat(path, &st) == 0 && (guint64)st.st_size > CHAT_MAX_FILE) {
    g_autofree char *why = g_strdup_printf("%" G_GUINT64_FORMAT " bytes is over the %u MiB bound",
                                           (guint64)st.st_size, CHAT_MAX_FILE >> 20);
    return fail_unreadable(out, path, why, error);
  }
  if (!g_file_get_contents(path, &text, &len, error)) {
    g_ptr_array_unref(out);
    return NULL;
  }
  JfJsonTextCheck check = len > CHAT_MAX_FILE ? JF_JSON_TEXT_OK : json_guard_check_text(text, len, CHAT_MAX_DEPTH);
  if (len > CHAT_MAX_FILE || check != JF_JSON_TEXT_OK || !g_utf8_validate_len(text, len, NULL)) {
    g_autofree char *why = len > CHAT_MAX_FILE ? g_strdup_printf("over the %u MiB bound", CHAT_MAX_FILE >> 20)
                           : check != JF_JSON_TEXT_OK ? json_guard_describe(check, CHAT_MAX_DEPTH)
                           : g_strdup("not valid UTF-8 text");
    return fail_unreadable(out, path, why, error);
  }
  g_autoptr(JsonParser) parser = json_parser_new();
  GError *e = NULL;
  if (!json_parser_load_from_data(parser, text, (gssize)len, &e)) {
    g_autofree char *why = g_strdup_printf("not valid JSON: %s", e->message);
    g_error_free(e);
    return fail_unreadable(out, path, why, error);
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *msgs = obj ? json_object_get_member(obj, "messages") : NULL;
  if (!msgs || !JSON_NODE_HOLDS_ARRAY(msgs))
    return fail_unreadable(out, path, "no \"messages\" array", error);
  JsonArray *arr = json_node_get_array(msgs);
  for (guint i = 0; i < json_array_get_length(arr); i++) {
    JsonNode *n = json_array_get_element(arr, i);
    if (!JSON_NODE_HOLDS_OBJECT(n))
      continue;
    JsonObject *m = json_node_get_object(n);
    const char *role = json_object_get_string_member_with_default(m, "role", "");
    if (g_strcmp0(role, "user") != 0 && g_strcmp0(role, "assistant") != 0)
      continue;
    const char *text = json_object_get_string_member_with_default(m, "text", "");
    if (!g_utf8_validate(text, -1, NULL))
      continue;
    JfChatEntry *e = jf_chat_entry_new(role, text);
    e->remembered = json_object_get_boolean_member_with_default(m, "remembered", FALSE);
    e->stopped = json_object_get_boolean_member_with_default(m, "stopped", FALSE);
    JsonNode *imgs = json_object_get_member(m, "images");
    if (imgs && JSON_NODE_HOLDS_ARRAY(imgs)) {
      JsonArray *ia = json_node_get_array(imgs);
      for (guint k = 0; k < json_array_get_length(ia); k++) {
        const char *rel = json_array_get_string_element(ia, k);
        /* only our own folder: a edited file must not make us read arbitrary paths */
        if (!rel || g_path_is_absolute(rel) || strstr(rel, ".."))
          continue;
        g_autofree char *full = g_build_filename(dir, rel, NULL);
        g_ptr_array_add(e->images, g_strdup(rel));
        g_ptr_array_add(e->textures, load_texture(full));
      }
    }
    g_ptr_array_add(out, e);
  }
  return out;
}

static gboolean write_image(const char *dir, JfChatEntry *e, guint i, GError **error)
{
  GdkTexture *t = g_ptr_array_index(e->textures, i);
  if (!t) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "an attached image was lost");
    return FALSE;
  }
  g_autofree char *sub = g_build_filename(dir, IMAGES_SUBDIR, NULL);
  if (g_mkdir_with_parents(sub, 0700) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "Cannot create %s", sub);
    return FALSE;
  }
  g_autoptr(GDateTime) now = g_date_time_new_now_utc();
  g_autofree char *stamp = g_date_time_format(now, "%Y%m%d-%H%M%S");
  g_autofree char *name = g_strdup_printf("%s-%08x.png", stamp, g_random_int());
  g_autofree char *full = g_build_filename(sub, name, NULL);
  JfImage *img = jf_texture_to_image(t);
  if (!img) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "Out of memory");
    return FALSE;
  }
  const char *keys[] = { "Software", NULL };
  const char *vals[] = { "JanusFlow", NULL };
  gboolean ok = image_save_png(full, img, FALSE, keys, vals, error);
  image_free(img);
  if (!ok)
    return FALSE;
  g_free(g_ptr_array_index(e->images, i));
  e->images->pdata[i] = g_build_filename(IMAGES_SUBDIR, name, NULL);
  return TRUE;
}

static void remove_unused_images(const char *dir, GPtrArray *entries)
{
  g_autofree char *sub = g_build_filename(dir, IMAGES_SUBDIR, NULL);
  GDir *d = g_dir_open(sub, 0, NULL);
  if (!d)
    return;
  g_autoptr(GHashTable) used = g_hash_table_new(g_str_hash, g_str_equal);
  for (guint i = 0; i < entries->len; i++) {
    JfChatEntry *e = g_ptr_array_index(entries, i);
    for (guint k = 0; k < e->images->len; k++) {
      const char *rel = g_ptr_array_index(e->images, k);
      if (rel)
        g_hash_table_add(used, (gpointer)(strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel));
    }
  }
  const char *name;
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_suffix(name, ".png") || g_hash_table_contains(used, name))
      continue;
    g_autofree char *full = g_build_filename(sub, name, NULL);
    g_unlink(full);
  }
  g_dir_close(d);
}

gboolean jf_chat_store_save(const char *dir, GPtrArray *entries, GError **error)
{
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "Cannot create %s", dir);
    return FALSE;
  }
  g_autoptr(JsonBuilder) b = json_builder_new();
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "version");
  json_builder_add_int_value(b, 1);
  json_builder_set_member_name(b, "messages");
  json_builder_begin_array(b);
  for (guint i = 0; i < entries->len; i++) {
    JfChatEntry *e = g_ptr_array_index(entries, i);
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "role");
    json_builder_add_string_value(b, e->role);
    json_builder_set_member_name(b, "text");
    json_builder_add_string_value(b, e->text);
    if (e->images->len > 0) {
      json_builder_set_member_name(b, "images");
      json_builder_begin_array(b);
      for (guint k = 0; k < e->images->len; k++) {
        if (!g_ptr_array_index(e->images, k) && !write_image(dir, e, k, error))
          return FALSE;
        json_builder_add_string_value(b, g_ptr_array_index(e->images, k));
      }
      json_builder_end_array(b);
    }
    json_builder_set_member_name(b, "remembered");
    json_builder_add_boolean_value(b, e->remembered);
    if (e->stopped) {
      json_builder_set_member_name(b, "stopped");
      json_builder_add_boolean_value(b, TRUE);
    }
    json_builder_end_object(b);
  }
  json_builder_end_array(b);
  json_builder_end_object(b);
  g_autoptr(JsonGenerator) gen = json_generator_new();
  g_autoptr(JsonNode) root = json_builder_get_root(b);
  json_generator_set_root(gen, root);
  json_generator_set_pretty(gen, TRUE);
  gsize len = 0;
  g_autofree char *data = json_generator_to_data(gen, &len);
  g_autofree char *path = g_build_filename(dir, "chat.json", NULL);
  if (!g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error))
    return FALSE;
  remove_unused_images(dir, entries);
  return TRUE;
}
