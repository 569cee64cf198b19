/* jf-image-util: the boundary between the engine's JfImage (straight RGBA8) and GTK's GdkTexture.
 * The UI keeps images as GdkTexture (immutable, reference counted, safe to hand to a thread);
 * the worker converts them back to JfImage right before the engine needs them. */
#pragma once
#include <gtk/gtk.h>
#include "image.h"

G_BEGIN_DECLS

/* Copies img into a new memory texture (R8G8B8A8, straight alpha). */
GdkTexture *jf_texture_from_image(const JfImage *img);
/* Downloads a texture into a new JfImage (exact for opaque pixels; any thread). */
JfImage *jf_texture_to_image(GdkTexture *texture);
/* Copies an image (the engine's preview is only valid during its callback). */
JfImage *jf_image_copy(const JfImage *img);
/* A copy no larger than max_side on its long side (box filter); for thumbnails. */
JfImage *jf_image_thumbnail(const JfImage *img, int max_side);

/* A file chooser filter "Images" with every format image_load reads. (Not
 * gtk_file_filter_add_pixbuf_formats: GTK 4.8 leaks the MIME type lists there.) */
GtkFileFilter *jf_image_file_filter_new(void);

G_END_DECLS
