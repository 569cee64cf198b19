#include "jf-gallery.h"
#include "jf-image-util.h"
#include "image.h"
#include "jf-config.h"
#include <glib/gstdio.h>
#include <errno.h>
#include <string.h>

JfGalleryEntry *jf_gallery_entry_new(void)
{
  JfGalleryEntry *e = g_new0(JfGalleryEntry, 1);
  e->steps = 30;
  e->cfg = 2.0;
  return e;
}

void jf_gallery_entry_free(JfGalleryEntry *e)
{
  if (!e)
    return;
  g_free(e->path);
  g_clear_object(&e->texture);
  g_clear_object(&e->thumb);
  g_free(e->prompt);
  g_free(e->steering);
  g_free(e);
}

JfGalleryEntry *jf_gallery_entry_copy(const JfGalleryEntry *e)
{
  JfGalleryEntry *c = g_new0(JfGalleryEntry, 1);
  *c = *e;
  c->path = g_strdup(e->path);
  c->texture = e->texture ? g_object_ref(e->texture) : NULL;
  c->thumb = e->thumb ? g_object_ref(e->thumb) : NULL;
  c->prompt = g_strdup(e->prompt);
  c->steering = g_strdup(e->steering);
  return c;
}

char *jf_gallery_entry_describe(const JfGalleryEntry *e)
{
  if (!e->has_params)
    return g_strdup(e->path ? e->path : "");
  GString *s = g_string_new(e->prompt ? e->prompt : "");
  g_string_append_printf(s, "\n%d steps · CFG %.1f · seed %" G_GUINT64_FORMAT, e->steps, e->cfg, e->seed);
  if (e->steering)
    g_string_append(s, " · steered during the run");
  return g_string_free(s, FALSE);
}

void jf_gallery_entry_make_thumb(JfGalleryEntry *e)
{
  if (!e->texture)
    return;
  JfImage *img = jf_texture_to_image(e->texture);
  if (!img)
    return;
  JfImage *small = jf_image_thumbnail(img, JF_GALLERY_THUMB);
  image_free(img);
  if (!small)
    return;
  g_clear_object(&e->thumb);
  e->thumb = jf_texture_from_image(small);
  image_free(small);
}

gboolean jf_gallery_write(const char *path, const JfGalleryEntry *e, GError **error)
{
  if (!e->texture) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_INVALID_ARGUMENT, "There is no image to save");
    return FALSE;
  }
  JfImage *img = jf_texture_to_image(e->texture);
  if (!img) {
    g_set_error_literal(error, G_IO_ERROR, G_IO_ERROR_NO_SPACE, "Out of memory");
    return FALSE;
  }
  g_autofree char *steps = g_strdup_printf("%d", e->steps);
  char cfg[G_ASCII_DTOSTR_BUF_SIZE];
  g_ascii_formatd(cfg, sizeof cfg, "%.2f", e->cfg);
  g_autofree char *seed = g_strdup_printf("%" G_GUINT64_FORMAT, e->seed);
  g_autofree char *index = g_strdup_printf("%d", e->index);
  const char *prompt = e->prompt ? e->prompt : "";
  const char *keys[] = { "Software", "Description", "janusflow.prompt", "janusflow.steps", "janusflow.cfg",
                         "janusflow.seed", "janusflow.index", e->steering ? "janusflow.steering" : NULL, NULL };
  const char *vals[] = { "JanusFlow " JF_VERSION, prompt, prompt, steps, cfg, seed, index, e->steering, NULL };
  /* generated images are opaque: no alpha channel in the file */
  gboolean ok = image_save_png(path, img, TRUE, keys, vals, error);
  image_free(img);
  return ok;
}

gboolean jf_gallery_save(const char *dir, JfGalleryEntry *e, GError **error)
{
  if (g_mkdir_with_parents(dir, 0755) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "Cannot create the folder %s: %s", dir,
                g_strerror(errno));
    return FALSE;
  }
  g_autoptr(GDateTime) now = g_date_time_new_now_local();
  g_autofree char *stamp = g_date_time_format(now, "%Y-%m-%d-%H%M%S");
  for (int n = 0; n < 1000; n++) {
    g_autofree char *name = n == 0
      ? g_strdup_printf("janusflow-%s-%" G_GUINT64_FORMAT "-%d.png", stamp, e->seed, e->index)
      : g_strdup_printf("janusflow-%s-%" G_GUINT64_FORMAT "-%d-%d.png", stamp, e->seed, e->index, n);
    g_autofree char *path = g_build_filename(dir, name, NULL);
    if (g_file_test(path, G_FILE_TEST_EXISTS))
      continue;
    if (!jf_gallery_write(path, e, error))
      return FALSE;
    g_free(e->path);
    e->path = g_steal_pointer(&path);
    return TRUE;
  }
  g_set_error(error, G_IO_ERROR, G_IO_ERROR_EXISTS, "Too many images with the same name in %s", dir);
  return FALSE;
}

/* Our own key, else the one `janusflow generate` writes (no prefix), so an image made on the
 * command line restores its parameters too. */
static const char *param(GHashTable *text, const char *name)
{
  g_autofree char *ours = g_strconcat("janusflow.", name, NULL);
  const char *v = g_hash_table_lookup(text, ours);
  return v ? v : g_hash_table_lookup(text, name);
}

static void read_params(JfGalleryEntry *e, GHashTable *text)
{
  const char *prompt = param(text, "prompt");
  if (!prompt)
    return;
  e->has_params = TRUE;
  e->prompt = g_strdup(prompt);
  const char *v;
  guint64 u;
  if ((v = param(text, "steps")) && g_ascii_string_to_unsigned(v, 10, 1, 1000, &u, NULL))
    e->steps = (int)u;
  if ((v = param(text, "cfg"))) {
    char *end = NULL;
    double d = g_ascii_strtod(v, &end);
    if (end && end != v && d >= 0 && d <= 100)
      e->cfg = d;
  }
  if ((v = param(text, "seed")))
    g_ascii_string_to_unsigned(v, 10, 0, G_MAXUINT64, &e->seed, NULL);
  if ((v = param(text, "index")) && g_ascii_string_to_unsigned(v, 10, 0, 1000, &u, NULL))
    e->index = (int)u;
  e->steering = g_strdup(g_hash_table_lookup(text, "janusflow.steering"));
}

JfGalleryEntry *jf_gallery_read(const char *path, GError **error)
{
  JfImage *img = image_load(path, error);
  if (!img)
    return NULL;
  JfGalleryEntry *e = jf_gallery_entry_new();
  e->path = g_strdup(path);
  e->texture = jf_texture_from_image(img);
  JfImage *small = jf_image_thumbnail(img, JF_GALLERY_THUMB);
  if (small) {
    e->thumb = jf_texture_from_image(small);
    image_free(small);
  }
  image_free(img);
  /* not a PNG, or one without text: just an image */
  GHashTable *text = image_read_png_text(path, NULL);
  if (text) {
    read_params(e, text);
    g_hash_table_unref(text);
  }
  return e;
}

typedef struct {
  char *path;
  gint64 mtime;
} ScanItem;

static int scan_cmp(gconstpointer a, gconstpointer b)
{
  const ScanItem *x = a, *y = b;
  if (x->mtime != y->mtime)
    return x->mtime < y->mtime ? 1 : -1;
  return -g_strcmp0(x->path, y->path);
}

GPtrArray *jf_gallery_scan(const char *dir, int max, GCancellable *cancel)
{
  GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)jf_gallery_entry_free);
  GDir *d = g_dir_open(dir, 0, NULL);
  if (!d)
    return out;
  GArray *items = g_array_new(FALSE, FALSE, sizeof(ScanItem));
  const char *name;
  while ((name = g_dir_read_name(d))) {
    if (!g_str_has_prefix(name, "janusflow-") || !g_str_has_suffix(name, ".png"))
      continue;
    ScanItem it = { g_build_filename(dir, name, NULL), 0 };
    GStatBuf st;
    if (g_stat(it.path, &st) == 0)
      it.mtime = (gint64)st.st_mtime;
    g_array_append_val(items, it);
  }
  g_dir_close(d);
  g_array_sort(items, scan_cmp);
  for (guint i = 0; i < items->len && (int)out->len < max; i++) {
    if (g_cancellable_is_cancelled(cancel))
      break;
    JfGalleryEntry *e = jf_gallery_read(g_array_index(items, ScanItem, i).path, NULL);
    if (!e)
      continue;
    g_clear_object(&e->texture);  /* keep memory small: the full image is read again on click */
    g_ptr_array_add(out, e);
  }
  for (guint i = 0; i < items->len; i++)
    g_free(g_array_index(items, ScanItem, i).path);
  g_array_free(items, TRUE);
  return out;
}
