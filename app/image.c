/* image: decoding into 8-bit RGBA. PNG goes through libpng directly (exact control over the
 * conversions, and the size is checked from the IHDR bytes before libpng allocates anything);
 * every other format goes through gdk-pixbuf's loaders, whose "size-prepared" signal lets us
 * refuse huge images before their pixels are allocated. */
#include "image.h"
#include "image_internal.h"

#include <gdk-pixbuf/gdk-pixbuf.h>
#include <png.h>
#include <setjmp.h>
#include <string.h>
#include <errno.h>
#include <sys/stat.h>
#include <glib/gstdio.h>

G_DEFINE_QUARK(jf-image-error-quark, jf_image_error)

JfImage *image_try_new(int width, int height)
{
  if (width <= 0 || height <= 0 || width > JF_IMAGE_MAX_SIDE || height > JF_IMAGE_MAX_SIDE ||
      (guint64)width * (guint64)height > JF_IMAGE_MAX_PIXELS)
    return NULL;
  uint8_t *px = g_try_malloc0((gsize)width * (gsize)height * 4);
  if (!px)
    return NULL;
  JfImage *img = g_new0(JfImage, 1);
  img->width = width;
  img->height = height;
  img->rgba = px;
  return img;
}

JfImage *image_new(int width, int height)
{
  g_return_val_if_fail(width > 0 && height > 0, NULL);
  return image_try_new(width, height);
}

void image_free(JfImage *img)
{
  if (!img)
    return;
  g_free(img->rgba);
  g_free(img);
}

/* One place decides what "too large" means so that PNG and gdk-pixbuf paths agree. */
gboolean image_check_size(guint64 width, guint64 height, const char *name, GError **error)
{
  if (width == 0 || height == 0) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_EMPTY, "%s: image has zero size (%" G_GUINT64_FORMAT
                "x%" G_GUINT64_FORMAT ")", name, width, height);
    return FALSE;
  }
  if (width > JF_IMAGE_MAX_SIDE || height > JF_IMAGE_MAX_SIDE || width * height > JF_IMAGE_MAX_PIXELS) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE,
                "%s: image is too large (%" G_GUINT64_FORMAT "x%" G_GUINT64_FORMAT
                "; the limit is %d pixels a side and %u megapixels)", name, width, height,
                JF_IMAGE_MAX_SIDE, JF_IMAGE_MAX_PIXELS / (1024u * 1024u));
    return FALSE;
  }
  return TRUE;
}

static JfImage *alloc_or_fail(int width, int height, const char *name, GError **error)
{
  JfImage *img = image_try_new(width, height);
  if (!img)
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE,
                "%s: out of memory for a %dx%d image", name, width, height);
  return img;
}

/* ------------------------------------------------------------------------------------------ */
/* PNG through libpng                                                                          */

const uint8_t image_png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

typedef struct {
  const uint8_t *data;
  gsize size, pos;
  char message[IMAGE_PNG_MESSAGE_SIZE];   /* libpng's own description of the last error */
} PngReader;

void image_png_error_fn(png_structp png, png_const_charp msg)
{
  char *buf = png_get_error_ptr(png);
  if (buf)
    g_strlcpy(buf, msg ? msg : "unknown error", IMAGE_PNG_MESSAGE_SIZE);
  png_longjmp(png, 1);
}

void image_png_warning_fn(png_structp png, png_const_charp msg)
{
  (void)png;
  /* warnings (bad CRC in an ancillary chunk, extra data...) don't stop decoding */
  g_debug("libpng warning: %s", msg);
}

static void png_read_mem(png_structp png, png_bytep out, size_t n)
{
  PngReader *r = png_get_io_ptr(png);
  if (n > r->size - r->pos)
    png_error(png, "file is truncated");   /* longjmps to the caller's handler */
  memcpy(out, r->data + r->pos, n);
  r->pos += n;
}

static guint32 be32(const uint8_t *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

static JfImage *load_png(const uint8_t *data, gsize size, const char *name, GError **error)
{
  /* The IHDR must be the first chunk; its size is checked here, before libpng sees it, so that a
   * hostile header is refused without allocating, and zero sizes get their own error code
   * (libpng would only say "invalid IHDR"). */
  if (size < 8 + 8 + 13 || memcmp(data + 12, "IHDR", 4) != 0 || be32(data + 8) != 13) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: corrupt PNG (%s)", name,
                size < 8 + 8 + 13 ? "file is truncated" : "missing IHDR header");
    return NULL;
  }
  if (!image_check_size(be32(data + 16), be32(data + 20), name, error))
    return NULL;

  PngReader reader = {.data = data, .size = size, .pos = 0};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, reader.message, image_png_error_fn,
                                           image_png_warning_fn);
  if (!png) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot initialise libpng", name);
    return NULL;
  }
  png_infop info = png_create_info_struct(png);
  JfImage *volatile img = NULL;
  png_bytep *volatile rows = NULL;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot initialise libpng", name);
    return NULL;
  }
  if (setjmp(png_jmpbuf(png))) {
    g_free(rows);
    image_free(img);
    png_destroy_read_struct(&png, &info, NULL);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: corrupt or truncated PNG (%s)", name,
                reader.message[0] ? reader.message : "unknown error");
    return NULL;
  }
  /* Our own size limits were applied above; libpng's (1e6 a side) would only turn an honest
   * "too large" into a format error. */
  png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
  /* The metadata chunks that libpng would copy into memory are skipped unread (text is read by
   * image_read_png_text); with those gone no per-chunk allocation limit is needed, and a large
   * but harmless metadata chunk does not make the image unreadable. */
  static const png_byte skipped[] = "tEXt\0zTXt\0iTXt\0iCCP\0sPLT\0eXIf\0sCAL\0pCAL";
  png_set_keep_unknown_chunks(png, PNG_HANDLE_CHUNK_NEVER, skipped, (int)(sizeof skipped / 5));
  png_set_chunk_cache_max(png, 1000);
  png_set_chunk_malloc_max(png, 0);
  png_set_read_fn(png, &reader, png_read_mem);
  png_read_info(png, info);

  png_uint_32 w, h;
  int depth, color, interlace;
  png_get_IHDR(png, info, &w, &h, &depth, &color, &interlace, NULL, NULL);
  /* Same conversions as Pillow's PNG reader followed by convert("RGB"): 16-bit samples keep the
   * high byte (truncation, not rounding), palette/tRNS expand, gray replicates. Gamma, sRGB and
   * iCCP are ignored, as Pillow ignores them. */
  if (depth == 16)
    png_set_strip_16(png);
  if (color == PNG_COLOR_TYPE_PALETTE)
    png_set_palette_to_rgb(png);
  if (color == PNG_COLOR_TYPE_GRAY && depth < 8)
    png_set_expand_gray_1_2_4_to_8(png);
  if (png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_tRNS_to_alpha(png);
  if (color == PNG_COLOR_TYPE_GRAY || color == PNG_COLOR_TYPE_GRAY_ALPHA)
    png_set_gray_to_rgb(png);
  if (!(color & PNG_COLOR_MASK_ALPHA) && !png_get_valid(png, info, PNG_INFO_tRNS))
    png_set_add_alpha(png, 0xff, PNG_FILLER_AFTER);
  png_set_interlace_handling(png);
  png_read_update_info(png, info);
  if (png_get_rowbytes(png, info) != (size_t)w * 4) {
    g_strlcpy(reader.message, "unsupported pixel layout", sizeof reader.message);
    png_longjmp(png, 1);
  }

  img = alloc_or_fail((int)w, (int)h, name, error);
  if (!img) {
    png_destroy_read_struct(&png, &info, NULL);
    return NULL;
  }
  rows = g_try_new(png_bytep, h);
  if (!rows) {
    image_free(img);
    png_destroy_read_struct(&png, &info, NULL);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE, "%s: out of memory for a %ux%u image", name,
                (unsigned)w, (unsigned)h);
    return NULL;
  }
  for (png_uint_32 y = 0; y < h; y++)
    rows[y] = img->rgba + (gsize)y * w * 4;
  png_read_image(png, rows);
  /* the trailing chunks are not needed: a file cut after its last IDAT still decodes */
  g_free(rows);
  rows = NULL;
  png_destroy_read_struct(&png, &info, NULL);
  return img;
}

/* ------------------------------------------------------------------------------------------ */
/* Everything else through gdk-pixbuf                                                          */

typedef struct {
  const char *name;
  GError *size_error;   /* set when size-prepared refused the image */
} PixbufGuard;

static void on_size_prepared(GdkPixbufLoader *loader, int width, int height, gpointer user)
{
  PixbufGuard *g = user;
  if (width < 0 || height < 0 || !image_check_size((guint64)MAX(width, 0), (guint64)MAX(height, 0),
                                                   g->name, &g->size_error)) {
    if (!g->size_error)
      g_set_error(&g->size_error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: invalid image size", g->name);
    /* By gdk-pixbuf's documented convention a zero size tells the module it will be closed and
     * must not allocate the pixels. */
    gdk_pixbuf_loader_set_size(loader, 0, 0);
  }
}

/* GIF: only the first frame is wanted, and decoding every frame of a hostile animation could
 * take a lot of memory, so the stream is cut after the first image's data and terminated with a
 * trailer. Returns the length to feed (the whole input when the structure is not understood;
 * gdk-pixbuf then reports what is wrong). *empty is set for a zero-sized screen or first frame,
 * which gdk-pixbuf's GIF loader turns into a g_critical and an "out of memory" error. */
static gsize gif_first_frame_length(const uint8_t *d, gsize n, gboolean *cut, gboolean *empty,
                                    gboolean *more)
{
  *cut = FALSE;
  *more = FALSE;
  *empty = FALSE;
  if (n < 13)
    return n;
  if ((d[6] | d[7]) == 0 || (d[8] | d[9]) == 0)
    *empty = TRUE;
  gsize p = 13;
  if (d[10] & 0x80)
    p += 3u * (1u << ((d[10] & 7) + 1));
  while (p < n) {
    uint8_t b = d[p];
    if (b == 0x21) {            /* extension: label, then data sub-blocks */
      p += 2;
    } else if (b == 0x2c) {     /* image descriptor, optional local table, LZW code size */
      if (p + 10 > n)
        return n;
      uint8_t flags = d[p + 9];
      if ((d[p + 5] | d[p + 6]) == 0 || (d[p + 7] | d[p + 8]) == 0)
        *empty = TRUE;
      p += 10;
      if (flags & 0x80)
        p += 3u * (1u << ((flags & 7) + 1));
      p += 1;
    } else if (b == 0x3b) {
      return n;                 /* trailer: leave it to the loader */
    } else {
      p++;                      /* the loader skips other bytes here, so the walk does too */
      continue;
    }
    while (p < n && d[p] != 0)  /* sub-blocks: length byte then data, 0 ends */
      p += 1u + d[p];
    if (p >= n)
      return n;
    p += 1;
    if (b == 0x2c) {
      *cut = TRUE;
      /* anything but the trailer after the first image means more frames follow */
      *more = p < n && d[p] != 0x3b;
      return p;
    }
  }
  return n;
}

static JfImage *pixbuf_to_image(GdkPixbuf *pb, const char *name, GError **error)
{
  int w = gdk_pixbuf_get_width(pb), h = gdk_pixbuf_get_height(pb);
  int nc = gdk_pixbuf_get_n_channels(pb), stride = gdk_pixbuf_get_rowstride(pb);
  if (gdk_pixbuf_get_colorspace(pb) != GDK_COLORSPACE_RGB || gdk_pixbuf_get_bits_per_sample(pb) != 8 ||
      (nc != 3 && nc != 4) || nc != (gdk_pixbuf_get_has_alpha(pb) ? 4 : 3)) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: unsupported pixel layout from the decoder",
                name);
    return NULL;
  }
  if (!image_check_size((guint64)MAX(w, 0), (guint64)MAX(h, 0), name, error))
    return NULL;
  JfImage *img = alloc_or_fail(w, h, name, error);
  if (!img)
    return NULL;
  const guint8 *src = gdk_pixbuf_read_pixels(pb);
  for (int y = 0; y < h; y++) {
    const guint8 *s = src + (gsize)y * stride;
    uint8_t *o = img->rgba + (gsize)y * w * 4;
    for (int x = 0; x < w; x++, s += nc, o += 4) {
      o[0] = s[0];
      o[1] = s[1];
      o[2] = s[2];
      o[3] = nc == 4 ? s[3] : 255;
    }
  }
  return img;
}

static JfImage *load_pixbuf(const uint8_t *data, gsize size, const char *name, GError **error)
{
  gboolean is_gif = size >= 6 && (memcmp(data, "GIF87a", 6) == 0 || memcmp(data, "GIF89a", 6) == 0);
  gboolean cut = FALSE, empty = FALSE, more = FALSE;
  gsize feed = is_gif ? gif_first_frame_length(data, size, &cut, &empty, &more) : size;
  if (empty) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_EMPTY, "%s: image has zero size (GIF screen or frame)", name);
    return NULL;
  }

  GdkPixbufLoader *loader = gdk_pixbuf_loader_new();
  PixbufGuard guard = {.name = name};
  g_signal_connect(loader, "size-prepared", G_CALLBACK(on_size_prepared), &guard);
  GError *lerr = NULL;
  gboolean ok = TRUE;
  /* chunks so that a refusal in size-prepared stops the feeding early */
  const gsize chunk = 64 * 1024;
  for (gsize off = 0; ok && off < feed && !guard.size_error; off += chunk)
    ok = gdk_pixbuf_loader_write(loader, data + off, MIN(chunk, feed - off), &lerr);
  static const guint8 gif_trailer = 0x3b;
  if (ok && cut && !guard.size_error)
    ok = gdk_pixbuf_loader_write(loader, &gif_trailer, 1, &lerr);
  /* a failed write has already closed the loader; closing twice is a programming error */
  if (ok)
    ok = gdk_pixbuf_loader_close(loader, guard.size_error ? NULL : &lerr);

  JfImage *img = NULL;
  if (guard.size_error) {
    g_propagate_error(error, guard.size_error);
    guard.size_error = NULL;
  } else if (!ok) {
    if (g_error_matches(lerr, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_UNKNOWN_TYPE))
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: not a recognised image format", name);
    else if (g_error_matches(lerr, GDK_PIXBUF_ERROR, GDK_PIXBUF_ERROR_INSUFFICIENT_MEMORY))
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE, "%s: out of memory decoding the image (%s)",
                  name, lerr ? lerr->message : "no details");
    else
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: corrupt or unsupported image (%s)", name,
                  lerr ? lerr->message : "no details");
  } else {
    GdkPixbufAnimation *anim = gdk_pixbuf_loader_get_animation(loader);
    GdkPixbuf *frame = anim ? gdk_pixbuf_animation_get_static_image(anim) : NULL;
    if (!frame) {
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: the decoder produced no image", name);
    } else {
      /* EXIF orientation: cameras store sensor-oriented pixels plus a tag */
      GdkPixbuf *oriented = gdk_pixbuf_apply_embedded_orientation(frame);
      if (oriented) {
        img = pixbuf_to_image(oriented, name, error);
        if (img)
          img->animated = more;
        g_object_unref(oriented);
      } else {
        g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE, "%s: out of memory rotating the image", name);
      }
    }
  }
  g_clear_error(&lerr);
  g_object_unref(loader);
  return img;
}

/* ------------------------------------------------------------------------------------------ */

JfImage *image_load_bytes(const void *data, gsize size, const char *name_for_errors, GError **error)
{
  const char *name = name_for_errors ? name_for_errors : "image data";
  if (size == 0 || !data) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: empty file, not an image", name);
    return NULL;
  }
  if (size >= 8 && memcmp(data, image_png_signature, 8) == 0)
    return load_png(data, size, name, error);
  return load_pixbuf(data, size, name, error);
}

JfImage *image_load(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  char *name = g_filename_display_name(path);
  JfImage *img = NULL;
  GStatBuf st;
  if (g_stat(path, &st) != 0) {
    int e = errno;
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot open: %s", name, g_strerror(e));
  } else if (!S_ISREG(st.st_mode)) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: not a regular file", name);
  } else if (st.st_size == 0) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: empty file, not an image", name);
  } else {
    /* mapped rather than read: large files cost address space, not memory */
    GError *merr = NULL;
    GMappedFile *mf = g_mapped_file_new(path, FALSE, &merr);
    if (!mf) {
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot read: %s", name, merr->message);
      g_error_free(merr);
    } else {
      img = image_load_bytes(g_mapped_file_get_contents(mf), g_mapped_file_get_length(mf), name, error);
      g_mapped_file_unref(mf);
    }
  }
  g_free(name);
  return img;
}
