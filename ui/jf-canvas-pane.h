/* JfCanvasPane: text-to-image. Prompt, Generate/Stop, the image redrawn at every Euler step from
 * the engine's preview, progress with time per step and ETA, CFG and steps that steer a running
 * generation from its next step, seed (random or locked), batch size, and after the run: save,
 * copy, "ask about this image" and the gallery strip of past results. */
#pragma once
#include <gtk/gtk.h>
#include "jf-engine.h"
#include "jf-settings.h"
#include "jf-canvas-view.h"
#include "jf-gallery-strip.h"

G_BEGIN_DECLS

#define JF_TYPE_CANVAS_PANE (jf_canvas_pane_get_type())
G_DECLARE_FINAL_TYPE(JfCanvasPane, jf_canvas_pane, JF, CANVAS_PANE, GtkBox)

/* engine: referenced; settings: borrowed, must outlive the pane. Loads the gallery. */
void jf_canvas_pane_setup(JfCanvasPane *p, JfEngine *engine, JfSettings *settings);
/* Puts the defaults from the settings into the controls (not during a run). */
void jf_canvas_pane_apply_settings(JfCanvasPane *p);

gboolean jf_canvas_pane_generate(JfCanvasPane *p);
void jf_canvas_pane_stop(JfCanvasPane *p);
gboolean jf_canvas_pane_is_busy(JfCanvasPane *p);

/* The finished image shown (NULL during a run or before the first). */
GdkTexture *jf_canvas_pane_get_image(JfCanvasPane *p);
void jf_canvas_pane_save_dialog(JfCanvasPane *p);
gboolean jf_canvas_pane_copy_image(JfCanvasPane *p);
void jf_canvas_pane_open_dialog(JfCanvasPane *p);
/* Shows an image file; a PNG made by the app also restores its parameters. */
void jf_canvas_pane_open_file(JfCanvasPane *p, GFile *file);
/* Shows a result and puts its parameters into the controls. */
void jf_canvas_pane_recall(JfCanvasPane *p, const JfGalleryEntry *e);

void jf_canvas_pane_set_prompt(JfCanvasPane *p, const char *prompt);
char *jf_canvas_pane_get_prompt(JfCanvasPane *p);
void jf_canvas_pane_focus_prompt(JfCanvasPane *p);
JfCanvasView *jf_canvas_pane_get_view(JfCanvasPane *p);
JfGalleryStrip *jf_canvas_pane_get_gallery(JfCanvasPane *p);
/* Pending gallery writes (tests wait for them). */
guint jf_canvas_pane_get_n_saving(JfCanvasPane *p);

G_END_DECLS
