/* jf-app: the GtkApplication (id JF_APP_ID). Owns the engine and the settings, builds the
 * window, registers the app actions and the keyboard accelerators, loads the CSS.
 * `janusflow --model DIR [--vae DIR]` opens the window with that model; without options the
 * remembered folders are used, else the setup page is shown. */
#pragma once
#include <gtk/gtk.h>
#include "jf-window.h"

G_BEGIN_DECLS

#define JF_TYPE_APPLICATION (jf_application_get_type())
G_DECLARE_FINAL_TYPE(JfApplication, jf_application, JF, APPLICATION, GtkApplication)

/* extra_flags: e.g. G_APPLICATION_NON_UNIQUE for tests that run several instances. */
JfApplication *jf_application_new(GApplicationFlags extra_flags);
/* The main window, created (and shown) on first use. */
JfWindow *jf_application_get_window(JfApplication *app);
JfEngine *jf_application_get_engine(JfApplication *app);
JfSettings *jf_application_get_settings(JfApplication *app);

/* Registers the compiled-in .ui files, CSS and icon (idempotent). Done by jf_application_new;
 * call it first when building widgets without an application. */
void jf_ui_ensure_resources(void);

/* Entry point used by app/main.c: runs the application and returns the exit status. */
int jf_app_run(int argc, char **argv);

G_END_DECLS
