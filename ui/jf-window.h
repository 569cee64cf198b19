/* JfWindow: the main window. A header bar with the Chat / Create switcher and the main menu;
 * the setup page until a model is loaded, then the two panes (in a stack, or side by side).
 * Owns the window actions (win.run, win.stop, win.save-image, ...) and drives model loading
 * through the engine. Closing it cancels running work and joins the engine's worker. */
#pragma once
#include <gtk/gtk.h>
#include "jf-engine.h"
#include "jf-settings.h"
#include "jf-chat-pane.h"
#include "jf-canvas-pane.h"
#include "jf-setup-page.h"

G_BEGIN_DECLS

#define JF_TYPE_WINDOW (jf_window_get_type())
G_DECLARE_FINAL_TYPE(JfWindow, jf_window, JF, WINDOW, GtkApplicationWindow)

/* engine: referenced; settings: borrowed (the application owns both and outlives the window). */
JfWindow *jf_window_new(GtkApplication *app, JfEngine *engine, JfSettings *settings);
/* Loads the model in the given folders (showing progress), or shows the setup page when
 * model_dir is NULL. */
void jf_window_open_model(JfWindow *w, const char *model_dir, const char *vae_dir);
/* Shows a transient message at the top of the window. */
void jf_window_show_toast(JfWindow *w, const char *message);
/* The same with a button that activates `action` (e.g. "app.reload-model") and dismisses it. */
void jf_window_show_toast_action(JfWindow *w, const char *message, const char *button_label, const char *action);
/* The message shown (NULL when hidden), and its button's action (NULL when it has none). */
const char *jf_window_get_toast(JfWindow *w);
const char *jf_window_get_toast_action(JfWindow *w);
/* Loads the model in the settings' folders again with the settings' device and weights; while
 * an answer or an image is being made, once it is done (nothing is stopped). */
void jf_window_reload_model(JfWindow *w);
gboolean jf_window_is_reload_pending(JfWindow *w);
/* After the preferences changed: if the loaded model's weight format is not the one chosen,
 * shows a toast that offers to reload it. */
void jf_window_offer_reload(JfWindow *w);
/* "chat" or "create" */
void jf_window_show_page(JfWindow *w, const char *name);
const char *jf_window_get_page(JfWindow *w);

JfChatPane *jf_window_get_chat_pane(JfWindow *w);
JfCanvasPane *jf_window_get_canvas_pane(JfWindow *w);
JfSetupPage *jf_window_get_setup_page(JfWindow *w);
JfEngine *jf_window_get_engine(JfWindow *w);

G_END_DECLS
