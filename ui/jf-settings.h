/* jf-settings: the app's preferences, kept in a keyfile at
 * $XDG_CONFIG_HOME/janusflow/settings.ini. A keyfile (rather than GSettings) works straight
 * from the build tree, with no schema to install and nothing to compile. */
#pragma once
#include <glib.h>
#include "generate.h"

G_BEGIN_DECLS

typedef struct {
  char *model_dir;        /* NULL until the user picked one */
  char *vae_dir;
  char *device;           /* NULL/"" = automatic */
  JfWeightFormat weights; /* the language model's weights on the device (the next load) */
  /* canvas defaults */
  int steps;
  double cfg;
  gboolean seed_locked;   /* FALSE: a new random seed for every run */
  guint64 seed;
  int batch;
  JfPreviewMode preview;  /* JF_PREVIEW_FAST or JF_PREVIEW_VAE */
  int preview_every;
  char *save_dir;         /* NULL = Pictures/JanusFlow */
  /* chat sampling */
  double temperature, top_p;
  int max_tokens;
} JfSettings;

JfSettings *jf_settings_new(void);            /* the defaults */
void jf_settings_free(JfSettings *s);
/* Reads the keyfile; a missing file gives the defaults, bad values are replaced by defaults. */
JfSettings *jf_settings_load(void);
/* Atomic write (temporary file + fsync + rename). */
gboolean jf_settings_save(const JfSettings *s, GError **error);
char *jf_settings_path(void);
/* Where generated images go: save_dir, else the user's Pictures folder / JanusFlow. */
char *jf_settings_get_save_dir(const JfSettings *s);
/* Clamps every field into its valid range. */
void jf_settings_sanitize(JfSettings *s);

G_DEFINE_AUTOPTR_CLEANUP_FUNC(JfSettings, jf_settings_free)

G_END_DECLS
