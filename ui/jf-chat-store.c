#include "jf-chat-store.h"
#include "jf-image-util.h"
#include "image.h"
#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

#define IMAGES_SUBDIR "chat-images"

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

GPtrArray *jf_chat_store_load(const char *dir, GError **error)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)jf_chat_entry_free);
  g_autofree char *path = g_build_filename(dir, "chat.json", NULL);
  if (!g_file_test(path, G_FILE_TEST_EXISTS))
    return out;
  g_autoptr(JsonParser) parser = json_parser_new();
  if (!json_parser_load_from_file(parser, path, error)) {
    g_ptr_array_unref(out);
    return NULL;
  }
  JsonNode *root = json_parser_get_root(parser);
  JsonObject *obj = root && JSON_NODE_HOLDS_OBJECT(root) ? json_node_get_object(root) : NULL;
  JsonNode *msgs = obj ? json_object_get_member(obj, "messages") : NULL;
  if (!msgs || !JSON_NODE_HOLDS_ARRAY(msgs)) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_INVALID_DATA, "%s: no \"messages\" array", path);
    g_ptr_array_unref(out);
    return NULL;
  }
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
