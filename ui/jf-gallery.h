/* jf-gallery: generated images on disk with the parameters that made them. Every result is
 * saved as PNG under the save folder (Pictures/JanusFlow by default) with these text entries:
 *   Software           "JanusFlow <version>"
 *   Description        the prompt (what image viewers show)
 *   janusflow.prompt   the prompt
 *   janusflow.steps    Euler steps (as finally planned)
 *   janusflow.cfg      CFG weight ("%.2f"; the last one used when it was changed during the run)
 *   janusflow.seed     the noise seed (decimal)
 *   janusflow.index    the image's place in its batch (0-based)
 *   janusflow.steering only when CFG or steps were changed during the run: "step:cfg/steps ..."
 * Reading recognises a PNG made by the app by janusflow.prompt. No GTK widgets here; every
 * function may run on any thread. */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

typedef struct {
  char *path;             /* the PNG, or NULL when not saved */
  GdkTexture *texture;    /* the full image, or NULL (entries from a scan hold only thumb) */
  GdkTexture *thumb;      /* at most JF_GALLERY_THUMB pixels on the long side */
  gboolean has_params;    /* the janusflow.* entries were found */
  char *prompt;
  int steps;
  double cfg;
  guint64 seed;
  int index;
  char *steering;         /* NULL unless steered */
} JfGalleryEntry;

#define JF_GALLERY_THUMB 128

JfGalleryEntry *jf_gallery_entry_new(void);
void jf_gallery_entry_free(JfGalleryEntry *e);
JfGalleryEntry *jf_gallery_entry_copy(const JfGalleryEntry *e);
/* "prompt · 30 steps · CFG 2.0 · seed 42" for tooltips */
char *jf_gallery_entry_describe(const JfGalleryEntry *e);
/* Fills thumb from texture. */
void jf_gallery_entry_make_thumb(JfGalleryEntry *e);

/* Saves e->texture under dir (created if needed) with a new unique name; sets e->path. */
gboolean jf_gallery_save(const char *dir, JfGalleryEntry *e, GError **error);
/* Writes e->texture to path with the parameters (Save As). */
gboolean jf_gallery_write(const char *path, const JfGalleryEntry *e, GError **error);
/* Reads an image file and, if it is a PNG made by the app, its parameters. */
JfGalleryEntry *jf_gallery_read(const char *path, GError **error);
/* The newest `max` PNGs of dir (thumbnails and parameters only), newest first. A missing
 * folder gives an empty array. */
GPtrArray *jf_gallery_scan(const char *dir, int max, GCancellable *cancel);

G_END_DECLS
