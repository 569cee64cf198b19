#include "jf-image-util.h"
#include <string.h>

GdkTexture *jf_texture_from_image(const JfImage *img)
{
  gsize stride = (gsize)img->width * 4;
  GBytes *bytes = g_bytes_new(img->rgba, stride * (gsize)img->height);
  GdkTexture *t = gdk_memory_texture_new(img->width, img->height, GDK_MEMORY_R8G8B8A8, bytes, stride);
  g_bytes_unref(bytes);
  return t;
}

JfImage *jf_texture_to_image(GdkTexture *texture)
{
  int w = gdk_texture_get_width(texture), h = gdk_texture_get_height(texture);
  JfImage *img = image_new(w, h);
  if (!img)
    return NULL;
  /* GTK 4.8 downloads only as cairo's ARGB32: premultiplied, native-endian BGRA words */
  gsize stride = (gsize)w * 4;
  guint8 *argb = g_malloc(stride * (gsize)h);
  gdk_texture_download(texture, argb, stride);
  for (gsize i = 0; i < (gsize)w * (gsize)h; i++) {
    guint32 px;
    memcpy(&px, argb + 4 * i, 4);
    guint a = px >> 24, r = (px >> 16) & 0xff, g = (px >> 8) & 0xff, b = px & 0xff;
    if (a != 0 && a != 255) {
      r = MIN(255u, (r * 255 + a / 2) / a);
      g = MIN(255u, (g * 255 + a / 2) / a);
      b = MIN(255u, (b * 255 + a / 2) / a);
    }
    guint8 *o = img->rgba + 4 * i;
    o[0] = (guint8)r;
    o[1] = (guint8)g;
    o[2] = (guint8)b;
    o[3] = (guint8)a;
  }
  g_free(argb);
  return img;
}

JfImage *jf_image_copy(const JfImage *img)
{
  JfImage *c = image_new(img->width, img->height);
  if (c)
    memcpy(c->rgba, img->rgba, (gsize)img->width * (gsize)img->height * 4);
  return c;
}

JfImage *jf_image_thumbnail(const JfImage *img, int max_side)
{
  int w = img->width, h = img->height;
  if (w <= max_side && h <= max_side)
    return jf_image_copy(img);
  int tw = w >= h ? max_side : MAX(1, (int)((gint64)w * max_side / h));
  int th = h > w ? max_side : MAX(1, (int)((gint64)h * max_side / w));
  JfImage *t = image_new(tw, th);
  if (!t)
    return NULL;
  for (int y = 0; y < th; y++) {
    int y0 = (int)((gint64)y * h / th), y1 = MAX(y0 + 1, (int)((gint64)(y + 1) * h / th));
    for (int x = 0; x < tw; x++) {
      int x0 = (int)((gint64)x * w / tw), x1 = MAX(x0 + 1, (int)((gint64)(x + 1) * w / tw));
      guint64 sum[4] = { 0 };
      for (int yy = y0; yy < y1; yy++)
        for (int xx = x0; xx < x1; xx++)
          for (int c = 0; c < 4; c++)
            sum[c] += img->rgba[((gsize)yy * w + xx) * 4 + c];
      guint64 n = (guint64)(y1 - y0) * (x1 - x0);
      for (int c = 0; c < 4; c++)
        t->rgba[((gsize)y * tw + x) * 4 + c] = (guint8)((sum[c] + n / 2) / n);
    }
  }
  return t;
}

GtkFileFilter *jf_image_file_filter_new(void)
{
  GtkFileFilter *filter = gtk_file_filter_new();
  gtk_file_filter_set_name(filter, "Images");
  gtk_file_filter_add_mime_type(filter, "image/png");
  GSList *formats = gdk_pixbuf_get_formats();
  for (GSList *l = formats; l; l = l->next) {
    char **mimes = gdk_pixbuf_format_get_mime_types(l->data);
    for (int i = 0; mimes && mimes[i]; i++)
      gtk_file_filter_add_mime_type(filter, mimes[i]);
    g_strfreev(mimes);
    char **exts = gdk_pixbuf_format_get_extensions(l->data);
    for (int i = 0; exts && exts[i]; i++)
      gtk_file_filter_add_suffix(filter, exts[i]);
    g_strfreev(exts);
  }
  g_slist_free(formats);
  return filter;
}
