/* JfGalleryStrip: the row of past results under the canvas. Clicking one emits "activated"
 * with its JfGalleryEntry (valid during the emission); the canvas then shows it and recalls
 * its parameters. */
#pragma once
#include <gtk/gtk.h>
#include "jf-gallery.h"

G_BEGIN_DECLS

#define JF_TYPE_GALLERY_STRIP (jf_gallery_strip_get_type())
G_DECLARE_FINAL_TYPE(JfGalleryStrip, jf_gallery_strip, JF, GALLERY_STRIP, GtkBox)

/* Reads the newest images of dir on a thread and shows them (after any added meanwhile). */
void jf_gallery_strip_load(JfGalleryStrip *s, const char *dir);
/* Adds an entry at the front (takes it). */
void jf_gallery_strip_prepend(JfGalleryStrip *s, JfGalleryEntry *e);
guint jf_gallery_strip_get_n_items(JfGalleryStrip *s);
const JfGalleryEntry *jf_gallery_strip_get_item(JfGalleryStrip *s, guint index);
/* Emits "activated" for an item, as a click does. */
void jf_gallery_strip_activate(JfGalleryStrip *s, guint index);

G_END_DECLS
