#include "jf-canvas-view.h"
#include <math.h>

struct _JfCanvasView {
  GtkWidget parent;
  GdkTexture *texture;
  cairo_surface_t *surface;  /* the texture's pixels in cairo's format */
  guint frames;
};

enum { PROP_0, PROP_TEXTURE, N_PROPS };
static GParamSpec *props[N_PROPS];

G_DEFINE_FINAL_TYPE(JfCanvasView, jf_canvas_view, GTK_TYPE_WIDGET)

static void jf_canvas_view_snapshot(GtkWidget *widget, GtkSnapshot *snapshot)
{
  JfCanvasView *v = JF_CANVAS_VIEW(widget);
  if (!v->surface)
    return;
  int w = gtk_widget_get_width(widget), h = gtk_widget_get_height(widget);
  int iw = cairo_image_surface_get_width(v->surface), ih = cairo_image_surface_get_height(v->surface);
  if (w <= 0 || h <= 0 || iw <= 0 || ih <= 0)
    return;
  double scale = MIN((double)w / iw, (double)h / ih);
  /* whole device pixels per image pixel when enlarging: every pixel gets the same size */
  int sf = gtk_widget_get_scale_factor(widget);
  if (scale * sf >= 1.0)
    scale = floor(scale * sf) / sf;
  double dw = iw * scale, dh = ih * scale;
  double x = floor((w - dw) / 2), y = floor((h - dh) / 2);
  graphene_rect_t r = GRAPHENE_RECT_INIT((float)x, (float)y, (float)dw, (float)dh);
  cairo_t *cr = gtk_snapshot_append_cairo(snapshot, &r);
  cairo_translate(cr, x, y);
  cairo_scale(cr, scale, scale);
  cairo_set_source_surface(cr, v->surface, 0, 0);
  cairo_pattern_set_filter(cairo_get_source(cr), CAIRO_FILTER_NEAREST);
  cairo_pattern_set_extend(cairo_get_source(cr), CAIRO_EXTEND_PAD);
  cairo_rectangle(cr, 0, 0, iw, ih);
  cairo_fill(cr);
  cairo_destroy(cr);
}

static void jf_canvas_view_measure(GtkWidget *widget, GtkOrientation o, int for_size, int *min, int *nat,
                                   int *min_base, int *nat_base)
{
  (void)widget;
  (void)o;
  (void)for_size;
  *min = 128;
  *nat = 384;
  *min_base = *nat_base = -1;
}

void jf_canvas_view_set_texture(JfCanvasView *v, GdkTexture *texture)
{
  g_return_if_fail(JF_IS_CANVAS_VIEW(v));
  if (texture)
    g_object_ref(texture);
  g_clear_object(&v->texture);
  v->texture = texture;
  g_clear_pointer(&v->surface, cairo_surface_destroy);
  if (texture) {
    int w = gdk_texture_get_width(texture), h = gdk_texture_get_height(texture);
    v->surface = cairo_image_surface_create(CAIRO_FORMAT_ARGB32, w, h);
    if (cairo_surface_status(v->surface) == CAIRO_STATUS_SUCCESS) {
      cairo_surface_flush(v->surface);
      gdk_texture_download(texture, cairo_image_surface_get_data(v->surface),
                           (gsize)cairo_image_surface_get_stride(v->surface));
      cairo_surface_mark_dirty(v->surface);
    } else {
      g_clear_pointer(&v->surface, cairo_surface_destroy);
    }
  }
  v->frames++;
  gtk_widget_queue_draw(GTK_WIDGET(v));
  g_object_notify_by_pspec(G_OBJECT(v), props[PROP_TEXTURE]);
}

GdkTexture *jf_canvas_view_get_texture(JfCanvasView *v)
{
  return v->texture;
}

guint jf_canvas_view_get_frame_count(JfCanvasView *v)
{
  return v->frames;
}

static void jf_canvas_view_dispose(GObject *obj)
{
  JfCanvasView *v = JF_CANVAS_VIEW(obj);
  g_clear_object(&v->texture);
  g_clear_pointer(&v->surface, cairo_surface_destroy);
  G_OBJECT_CLASS(jf_canvas_view_parent_class)->dispose(obj);
}

static void jf_canvas_view_get_property(GObject *obj, guint id, GValue *value, GParamSpec *pspec)
{
  JfCanvasView *v = JF_CANVAS_VIEW(obj);
  switch (id) {
  case PROP_TEXTURE: g_value_set_object(value, v->texture); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void jf_canvas_view_set_property(GObject *obj, guint id, const GValue *value, GParamSpec *pspec)
{
  JfCanvasView *v = JF_CANVAS_VIEW(obj);
  switch (id) {
  case PROP_TEXTURE: jf_canvas_view_set_texture(v, g_value_get_object(value)); break;
  default: G_OBJECT_WARN_INVALID_PROPERTY_ID(obj, id, pspec);
  }
}

static void jf_canvas_view_class_init(JfCanvasViewClass *klass)
{
  GObjectClass *oc = G_OBJECT_CLASS(klass);
  GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
  oc->dispose = jf_canvas_view_dispose;
  oc->get_property = jf_canvas_view_get_property;
  oc->set_property = jf_canvas_view_set_property;
  wc->snapshot = jf_canvas_view_snapshot;
  wc->measure = jf_canvas_view_measure;
  props[PROP_TEXTURE] = g_param_spec_object("texture", NULL, NULL, GDK_TYPE_TEXTURE,
                                            G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY);
  g_object_class_install_properties(oc, N_PROPS, props);
  gtk_widget_class_set_css_name(wc, "canvasview");
  gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_IMG);
}

static void jf_canvas_view_init(JfCanvasView *v)
{
  gtk_widget_set_overflow(GTK_WIDGET(v), GTK_OVERFLOW_HIDDEN);
}

GtkWidget *jf_canvas_view_new(void)
{
  return g_object_new(JF_TYPE_CANVAS_VIEW, NULL);
}
