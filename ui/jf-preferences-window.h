/* JfPreferencesWindow: device and language model weight format, canvas defaults (steps, CFG, seed mode), preview mode and the
 * folder images are saved to. Edits the JfSettings directly, saves them when closed and then
 * emits "changed". */
#pragma once
#include <gtk/gtk.h>
#include "jf-settings.h"
#include "jf-engine.h"

G_BEGIN_DECLS

#define JF_TYPE_PREFERENCES_WINDOW (jf_preferences_window_get_type())
G_DECLARE_FINAL_TYPE(JfPreferencesWindow, jf_preferences_window, JF, PREFERENCES_WINDOW, GtkWindow)

/* settings: borrowed, must outlive the window. engine (optional) for the memory figure. */
GtkWidget *jf_preferences_window_new(GtkWindow *parent, JfSettings *settings, JfEngine *engine);

G_END_DECLS
