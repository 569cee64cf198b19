/* JfCanvasView: shows one image scaled to fit, with nearest-neighbour sampling, so a 24x24
 * latent preview or a 384x384 result stays crisp at any size. (GTK 4.8 has no scaling filter
 * on GtkPicture or texture nodes; a cairo node with CAIRO_FILTER_NEAREST is what it offers.) */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define JF_TYPE_CANVAS_VIEW (jf_canvas_view_get_type())
G_DECLARE_FINAL_TYPE(JfCanvasView, jf_canvas_view, JF, CANVAS_VIEW, GtkWidget)

GtkWidget *jf_canvas_view_new(void);
void jf_canvas_view_set_texture(JfCanvasView *v, GdkTexture *texture);
GdkTexture *jf_canvas_view_get_texture(JfCanvasView *v);
/* How many images were set since creation (tests count preview frames). */
guint jf_canvas_view_get_frame_count(JfCanvasView *v);

G_END_DECLS
