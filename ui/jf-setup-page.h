/* JfSetupPage: the first-start screen. The user picks the JanusFlow folder and the VAE folder;
 * each choice is checked at once on a thread (model_check_folder) and what is missing or wrong
 * is named. "Load Model" emits "load-requested"; the window then drives the progress display. */
#pragma once
#include <gtk/gtk.h>

G_BEGIN_DECLS

#define JF_TYPE_SETUP_PAGE (jf_setup_page_get_type())
G_DECLARE_FINAL_TYPE(JfSetupPage, jf_setup_page, JF, SETUP_PAGE, GtkBox)

/* Either may be NULL. Starts a check. */
void jf_setup_page_set_folders(JfSetupPage *p, const char *model_dir, const char *vae_dir);
const char *jf_setup_page_get_model_dir(JfSetupPage *p);
const char *jf_setup_page_get_vae_dir(JfSetupPage *p);
/* Fills empty folders with the Hugging Face cache's copies, if there are any. */
void jf_setup_page_guess_folders(JfSetupPage *p);

void jf_setup_page_set_loading(JfSetupPage *p, gboolean loading);
void jf_setup_page_set_progress(JfSetupPage *p, double fraction, const char *what);
/* Shows a loading error (NULL clears). */
void jf_setup_page_set_error(JfSetupPage *p, const char *message);
/* Adds a button to the error shown that activates `action` (e.g. "win.load-8bit"); it goes
 * away with the message. get: its action, NULL when none is shown. */
void jf_setup_page_set_error_action(JfSetupPage *p, const char *label, const char *action);
const char *jf_setup_page_get_error_action(JfSetupPage *p);
/* A check is running. */
gboolean jf_setup_page_is_checking(JfSetupPage *p);
gboolean jf_setup_page_is_ready(JfSetupPage *p);

G_END_DECLS
