/* image_internal: what image.c, image_png.c and image_preprocess.c share; not part of the API. */
#pragma once
#include "image.h"
#include <png.h>

/* NULL for invalid sizes or when memory runs out (image_new's checked twin). */
JfImage *image_try_new(int width, int height);
/* Applies JF_IMAGE_MAX_SIDE / JF_IMAGE_MAX_PIXELS; EMPTY or TOO_LARGE naming `name`. */
gboolean image_check_size(guint64 width, guint64 height, const char *name, GError **error);

extern const uint8_t image_png_signature[8];
/* libpng callbacks: the error pointer is a char[IMAGE_PNG_MESSAGE_SIZE] (or NULL) that receives
 * the message before the longjmp; warnings only go to g_debug. */
#define IMAGE_PNG_MESSAGE_SIZE 256
void image_png_error_fn(png_structp png, png_const_charp msg);
void image_png_warning_fn(png_structp png, png_const_charp msg);
