/* image_png: writing PNGs with text parameters (atomically: a temporary file beside the target,
 * fsync, rename, so a crash or a full disk never leaves a half-written image under the real name
 * nor destroys the previous one) and reading those parameters back from any PNG. */
#include "image.h"
#include "image_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <glib/gstdio.h>

/* Bounds for reading text from untrusted files. */
#define TEXT_MAX_CHUNKS 1024
#define TEXT_MAX_CHUNK_BYTES (8u << 20)    /* one chunk, decompressed */
#define TEXT_MAX_TOTAL_BYTES (32u << 20)   /* all keys and values together */

/* ------------------------------------------------------------------------------------------ */
/* Writing                                                                                     */

typedef struct {
  char message[IMAGE_PNG_MESSAGE_SIZE];
  FILE *f;
  int write_errno;
} PngWriter;

static void png_write_file(png_structp png, png_bytep data, size_t n)
{
  PngWriter *w = png_get_io_ptr(png);
  if (fwrite(data, 1, n, w->f) != n) {
    w->write_errno = errno ? errno : EIO;
    png_error(png, "write failed");
  }
}

static void png_flush_file(png_structp png)
{
  (void)png;   /* the whole file is flushed and synced once at the end */
}

/* PNG keywords: 1-79 printable Latin-1 characters, no leading, trailing or double spaces (libpng
 * would otherwise abort the whole write). Restricted to ASCII here, since the keys come in UTF-8. */
static gboolean key_is_valid(const char *k)
{
  size_t n = strlen(k);
  if (n < 1 || n > 79 || k[0] == ' ' || k[n - 1] == ' ')
    return FALSE;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)k[i];
    if (c < 32 || c > 126 || (c == ' ' && k[i + 1] == ' '))
      return FALSE;
  }
  return TRUE;
}

static void fsync_dir(const char *dir)
{
  int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd >= 0) {
    (void)fsync(fd);   /* durability of the rename; some filesystems refuse, which is harmless */
    close(fd);
  }
}

/* Writes the PNG stream to `f`; on failure the message says why. */
static gboolean write_png_stream(FILE *f, const JfImage *img, gboolean drop_alpha, const char *const *keys,
                                 const char *const *values, int n_text, char *why, gsize why_size)
{
  PngWriter w = {.f = f};
  png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, w.message, image_png_error_fn,
                                            image_png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  png_text *volatile text = NULL;
  png_bytep *volatile rows = NULL;
  if (!info) {
    png_destroy_write_struct(&png, NULL);
    g_strlcpy(why, "cannot initialise libpng", why_size);
    return FALSE;
  }
  if (setjmp(png_jmpbuf(png))) {
    if (w.write_errno)
      g_strlcpy(why, g_strerror(w.write_errno), why_size);
    else
      g_strlcpy(why, w.message[0] ? w.message : "libpng error", why_size);
    g_free(text);
    g_free(rows);
    png_destroy_write_struct(&png, &info);
    return FALSE;
  }
  png_set_write_fn(png, &w, png_write_file, png_flush_file);
  png_set_IHDR(png, info, (png_uint_32)img->width, (png_uint_32)img->height, 8,
               drop_alpha ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_RGB_ALPHA, PNG_INTERLACE_NONE,
               PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
  if (n_text > 0) {
    text = g_new0(png_text, n_text);
    for (int i = 0; i < n_text; i++) {
      /* iTXt for every entry: tEXt is Latin-1 only and prompts are UTF-8 */
      text[i].compression = PNG_ITXT_COMPRESSION_NONE;
      text[i].key = (char *)keys[i];
      text[i].text = (char *)values[i];
      text[i].text_length = 0;
      text[i].itxt_length = strlen(values[i]);
      text[i].lang = NULL;
      text[i].lang_key = NULL;
    }
    png_set_text(png, info, text, n_text);
  }
  png_write_info(png, info);
  if (drop_alpha)
    png_set_filler(png, 0, PNG_FILLER_AFTER);   /* on write: strips the 4th byte */
  rows = g_new(png_bytep, img->height);
  for (int y = 0; y < img->height; y++)
    rows[y] = img->rgba + (gsize)y * img->width * 4;
  png_write_image(png, rows);
  png_write_end(png, NULL);
  g_free(rows);
  g_free(text);
  png_destroy_write_struct(&png, &info);
  return TRUE;
}

gboolean image_save_png(const char *path, const JfImage *img, gboolean drop_alpha, const char *const *keys,
                        const char *const *values, GError **error)
{
  g_return_val_if_fail(path != NULL && img != NULL, FALSE);
  char *name = g_filename_display_name(path);
  gboolean ok = FALSE;
  char *dest = NULL, *tmp = NULL, *dir = NULL;
  int fd = -1;
  FILE *f = NULL;

  if (!img->rgba || img->width <= 0 || img->height <= 0 ||
      !image_check_size((guint64)img->width, (guint64)img->height, name, error))
    goto out_invalid;
  int n_text = 0;
  if (keys && values) {
    while (keys[n_text] && values[n_text])
      n_text++;
    if (keys[n_text] || values[n_text]) {
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: text keys and values differ in number", name);
      goto out_invalid;
    }
  }
  for (int i = 0; i < n_text; i++) {
    if (!key_is_valid(keys[i])) {
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT,
                  "%s: \"%s\" cannot be a PNG text key (1-79 printable ASCII characters)", name, keys[i]);
      goto out_invalid;
    }
    if (!g_utf8_validate(values[i], -1, NULL)) {
      g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: the value of \"%s\" is not valid UTF-8",
                  name, keys[i]);
      goto out_invalid;
    }
  }

  /* Replace what a symbolic link points to, not the link; refuse devices and directories (as
   * root, a rename over /dev/full would replace the device node). */
  GStatBuf st;
  gboolean exists = g_stat(path, &st) == 0;
  if (exists && !S_ISREG(st.st_mode)) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: not a regular file", name);
    goto out_invalid;
  }
  dest = exists ? realpath(path, NULL) : NULL;
  if (!dest)
    dest = g_strdup(path);
  dir = g_path_get_dirname(dest);
  tmp = g_strdup_printf("%s.XXXXXX", dest);
  fd = g_mkstemp_full(tmp, O_RDWR | O_CLOEXEC, 0666);   /* the umask applies, as for any new file */
  if (fd < 0) {
    int e = errno;
    char *dname = g_filename_display_name(dir);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: cannot create a file in %s: %s", name,
                dname, g_strerror(e));
    g_free(dname);
    g_clear_pointer(&tmp, g_free);   /* nothing to remove */
    goto out;
  }
  if (exists)
    (void)fchmod(fd, st.st_mode & 07777);   /* keep the permissions of the file being replaced */
  f = fdopen(fd, "wb");
  if (!f) {
    int e = errno;
    close(fd);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: %s", name, g_strerror(e));
    goto out;
  }
  char why[IMAGE_PNG_MESSAGE_SIZE] = "";
  errno = 0;
  if (!write_png_stream(f, img, drop_alpha, keys, values, n_text, why, sizeof why)) {
    fclose(f);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: %s", name, why);
    goto out;
  }
  /* errors of buffered writes (ENOSPC, EDQUOT, EIO) only show up here */
  if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
    int e = errno;
    fclose(f);
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: %s", name, g_strerror(e));
    goto out;
  }
  if (fclose(f) != 0) {
    int e = errno;
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: %s", name, g_strerror(e));
    goto out;
  }
  if (g_rename(tmp, dest) != 0) {
    int e = errno;
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot save: cannot rename the temporary file: %s",
                name, g_strerror(e));
    goto out;
  }
  fsync_dir(dir);
  g_clear_pointer(&tmp, g_free);
  ok = TRUE;

out:
  if (tmp) {
    (void)g_unlink(tmp);
    g_free(tmp);
  }
out_invalid:
  g_free(dir);
  g_free(dest);
  g_free(name);
  return ok;
}

/* ------------------------------------------------------------------------------------------ */
/* Reading text                                                                                */

/* Each text chunk is parsed by libpng alone, in a stream of its own made of the signature, a
 * stand-in 1x1 RGB IHDR, the chunk, and the header of an IDAT (where png_read_info stops): the
 * image data is never decoded, text after the IDATs is found too, and one hostile chunk can
 * neither cost more than one chunk's limit nor spoil the others. */
static const uint8_t fake_ihdr[25] = {0, 0, 0, 13, 'I', 'H', 'D', 'R', 0, 0, 0, 1, 0, 0, 0, 1,
                                      8, 2, 0, 0, 0, 0x90, 0x77, 0x53, 0xde};
static const uint8_t fake_idat[8] = {0, 0, 0, 0, 'I', 'D', 'A', 'T'};

typedef struct {
  char message[IMAGE_PNG_MESSAGE_SIZE];
  const uint8_t *seg[4];
  gsize len[4];
  int cur;
  gsize pos;
} ChunkStream;

static void chunk_stream_read(png_structp png, png_bytep out, size_t n)
{
  ChunkStream *s = png_get_io_ptr(png);
  while (n > 0) {
    if (s->cur >= 4)
      png_error(png, "unexpected end of text stream");
    gsize avail = s->len[s->cur] - s->pos;
    gsize take = MIN(avail, n);
    memcpy(out, s->seg[s->cur] + s->pos, take);
    out += take;
    n -= take;
    s->pos += take;
    if (s->pos == s->len[s->cur]) {
      s->cur++;
      s->pos = 0;
    }
  }
}

/* tEXt/zTXt keys and values are Latin-1 by the standard, but many writers put UTF-8 in them:
 * valid UTF-8 is taken as such, anything else converted from Latin-1. */
static char *latin1_or_utf8(const char *s)
{
  if (g_utf8_validate(s, -1, NULL))
    return g_strdup(s);
  GString *o = g_string_sized_new(strlen(s) * 2);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++)
    g_string_append_unichar(o, *p);
  return g_string_free(o, FALSE);
}

static guint32 rd32(const uint8_t *p)
{
  return ((guint32)p[0] << 24) | ((guint32)p[1] << 16) | ((guint32)p[2] << 8) | p[3];
}

/* Parses one text chunk into `table`; returns the bytes added, 0 when libpng dropped it. */
static gsize read_one_text(const uint8_t *chunk, gsize chunk_len, GHashTable *table)
{
  ChunkStream s = {.seg = {image_png_signature, fake_ihdr, chunk, fake_idat}, .len = {8, 25, chunk_len, 8}};
  png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, s.message, image_png_error_fn,
                                           image_png_warning_fn);
  png_infop info = png ? png_create_info_struct(png) : NULL;
  gsize added = 0;
  if (!info) {
    png_destroy_read_struct(&png, NULL, NULL);
    return 0;
  }
  if (setjmp(png_jmpbuf(png))) {
    /* an oversized or corrupt chunk: skip it, keep the others */
    g_debug("PNG text chunk skipped: %s", s.message);
    png_destroy_read_struct(&png, &info, NULL);
    return 0;
  }
  png_set_chunk_cache_max(png, 4);
  png_set_chunk_malloc_max(png, TEXT_MAX_CHUNK_BYTES);
  png_set_read_fn(png, &s, chunk_stream_read);
  png_read_info(png, info);
  png_textp text = NULL;
  int n = png_get_text(png, info, &text, NULL);
  for (int i = 0; i < n; i++) {
    char *key = latin1_or_utf8(text[i].key);
    char *value;
    if (text[i].compression == PNG_ITXT_COMPRESSION_NONE || text[i].compression == PNG_ITXT_COMPRESSION_zTXt)
      value = g_utf8_make_valid(text[i].text ? text[i].text : "", -1);
    else
      value = latin1_or_utf8(text[i].text ? text[i].text : "");
    added += strlen(key) + strlen(value);
    g_hash_table_replace(table, key, value);
  }
  png_destroy_read_struct(&png, &info, NULL);
  return added;
}

GHashTable *image_read_png_text(const char *path, GError **error)
{
  g_return_val_if_fail(path != NULL, NULL);
  char *name = g_filename_display_name(path);
  GHashTable *table = NULL;
  GMappedFile *mf = NULL;
  GStatBuf st;
  if (g_stat(path, &st) != 0) {
    int e = errno;
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot open: %s", name, g_strerror(e));
    goto out;
  }
  if (!S_ISREG(st.st_mode)) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: not a regular file", name);
    goto out;
  }
  GError *merr = NULL;
  mf = g_mapped_file_new(path, FALSE, &merr);
  if (!mf) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_IO, "%s: cannot read: %s", name, merr->message);
    g_error_free(merr);
    goto out;
  }
  const uint8_t *d = (const uint8_t *)g_mapped_file_get_contents(mf);
  gsize size = g_mapped_file_get_length(mf);
  if (size < 8 + 8 || memcmp(d, image_png_signature, 8) != 0 || memcmp(d + 12, "IHDR", 4) != 0) {
    g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_FORMAT, "%s: not a PNG file", name);
    goto out;
  }
  table = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
  gsize pos = 8, total = 0;
  int n_chunks = 0;
  /* Walk the chunk headers only; a chunk running past the end of the file ends the walk (a
   * truncated file still gives the text before the cut). */
  while (size - pos >= 12) {
    guint32 len = rd32(d + pos);
    const uint8_t *type = d + pos + 4;
    if (len > PNG_UINT_31_MAX || len > size - pos - 12)
      break;
    if (memcmp(type, "IEND", 4) == 0)
      break;
    if (memcmp(type, "tEXt", 4) == 0 || memcmp(type, "zTXt", 4) == 0 || memcmp(type, "iTXt", 4) == 0) {
      if (++n_chunks > TEXT_MAX_CHUNKS) {
        g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE, "%s: more than %d text chunks", name,
                    TEXT_MAX_CHUNKS);
        g_clear_pointer(&table, g_hash_table_unref);
        goto out;
      }
      total += read_one_text(d + pos, (gsize)len + 12, table);
      if (total > TEXT_MAX_TOTAL_BYTES) {
        g_set_error(error, JF_IMAGE_ERROR, JF_IMAGE_ERROR_TOO_LARGE, "%s: text chunks hold more than %u MiB", name,
                    TEXT_MAX_TOTAL_BYTES >> 20);
        g_clear_pointer(&table, g_hash_table_unref);
        goto out;
      }
    }
    pos += (gsize)len + 12;
  }
out:
  if (mf)
    g_mapped_file_unref(mf);
  g_free(name);
  return table;
}
