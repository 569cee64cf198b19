/* image: decoding (PNG through libpng; JPEG/WebP/GIF first frame/BMP through gdk-pixbuf's
 * loaders, EXIF orientation applied), the understanding preprocessor (exact Pillow bicubic), and
 * PNG writing with text parameters (atomic: temporary file, fsync, rename). No GTK in here. */
#pragma once
#include <glib.h>
#include <stdint.h>
#include "config.h"

G_BEGIN_DECLS

#define JF_IMAGE_ERROR (jf_image_error_quark())
GQuark jf_image_error_quark(void);
typedef enum {
  JF_IMAGE_ERROR_IO,
  JF_IMAGE_ERROR_FORMAT,     /* unreadable / corrupt / truncated / unsupported */
  JF_IMAGE_ERROR_EMPTY,      /* zero width or height */
  JF_IMAGE_ERROR_TOO_LARGE,  /* over JF_IMAGE_MAX_SIDE or JF_IMAGE_MAX_PIXELS */
  JF_IMAGE_ERROR_ANIMATED,   /* only reported when the caller asked to refuse animations */
} JfImageError;

#define JF_IMAGE_MAX_SIDE 16384
#define JF_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)

/* 8-bit RGBA, rows top to bottom, stride = 4 * width. */
typedef struct {
  int width, height;
  uint8_t *rgba;
  gboolean animated;   /* the file held more frames; this is the first (callers tell the user) */
} JfImage;

JfImage *image_new(int width, int height);           /* zeroed */
void image_free(JfImage *img);
JfImage *image_load(const char *path, GError **error);
JfImage *image_load_bytes(const void *data, gsize size, const char *name_for_errors, GError **error);

/* The VLMImageProcessor: RGB conversion as the processor does it (PIL convert("RGB") drops alpha,
 * so transparent pixels keep their colour), long side to image_size with Pillow's 8-bit bicubic, centred on a square of the
 * background colour, x*rescale, (x-mean)/std when do_normalize. Returns float CHW
 * [3, image_size, image_size] (g_malloc'd). */
float *image_preprocess(const JfImage *img, const JfProcessorConfig *pc);

/* Writes RGBA (or RGB when drop_alpha) 8-bit PNG with tEXt/iTXt entries keys[i] = values[i]
 * (NULL-terminated arrays, UTF-8), atomically. */
gboolean image_save_png(const char *path, const JfImage *img, gboolean drop_alpha,
                        const char *const *keys, const char *const *values, GError **error);
/* Reads the text entries of a PNG (key -> value, UTF-8). */
GHashTable *image_read_png_text(const char *path, GError **error);

G_END_DECLS
