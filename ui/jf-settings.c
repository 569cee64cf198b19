#include "jf-settings.h"
#include <glib/gstdio.h>
#include <errno.h>
#include <math.h>
#include "sampler.h"

#define GROUP_MODEL "Model"
#define GROUP_CREATE "Create"
#define GROUP_CHAT "Chat"

JfSettings *jf_settings_new(void)
{
  JfSettings *s = g_new0(JfSettings, 1);
  /* the demo's defaults (generate.h) */
  s->steps = 30;
  s->cfg = 2.0;
  s->seed_locked = FALSE;
  s->seed = 42;
  s->batch = 1;
  s->preview = JF_PREVIEW_FAST;
  s->preview_every = 5;
  JfSampling smp = sampler_defaults();
  s->temperature = smp.temperature;
  s->top_p = smp.top_p;
  s->max_tokens = smp.max_new_tokens;
  return s;
}

void jf_settings_free(JfSettings *s)
{
  if (!s)
    return;
  g_free(s->model_dir);
  g_free(s->vae_dir);
  g_free(s->device);
  g_free(s->save_dir);
  g_free(s);
}

char *jf_settings_path(void)
{
  return g_build_filename(g_get_user_config_dir(), "janusflow", "settings.ini", NULL);
}

void jf_settings_sanitize(JfSettings *s)
{
  s->steps = CLAMP(s->steps, 1, 200);
  if (!(s->cfg >= 0.0 && s->cfg <= 20.0))  /* also catches NaN */
    s->cfg = 2.0;
  s->batch = CLAMP(s->batch, 1, 8);
  if (s->preview != JF_PREVIEW_FAST && s->preview != JF_PREVIEW_VAE)
    s->preview = JF_PREVIEW_FAST;
  s->preview_every = CLAMP(s->preview_every, 1, 100);
  if (!(s->temperature >= 0.0 && s->temperature <= 2.0))
    s->temperature = 0.1;
  if (!(s->top_p > 0.0 && s->top_p <= 1.0))
    s->top_p = 0.95;
  s->max_tokens = CLAMP(s->max_tokens, 1, 4096);
  if (s->weights != JF_WEIGHTS_BF16 && s->weights != JF_WEIGHTS_Q8_0)
    s->weights = JF_WEIGHTS_BF16;
  /* what the controls can show; keeps the file free of float noise like 0.94999998 */
  s->cfg = round(s->cfg * 100) / 100;
  s->temperature = round(s->temperature * 100) / 100;
  s->top_p = round(s->top_p * 100) / 100;
}

static char *get_string(GKeyFile *kf, const char *group, const char *key)
{
  char *v = g_key_file_get_string(kf, group, key, NULL);
  if (v && !*v)
    g_clear_pointer(&v, g_free);
  return v;
}

static int get_int(GKeyFile *kf, const char *group, const char *key, int dflt)
{
  GError *e = NULL;
  int v = g_key_file_get_integer(kf, group, key, &e);
  if (e) {
    g_error_free(e);
    return dflt;
  }
  return v;
}

static double get_double(GKeyFile *kf, const char *group, const char *key, double dflt)
{
  GError *e = NULL;
  double v = g_key_file_get_double(kf, group, key, &e);
  if (e) {
    g_error_free(e);
    return dflt;
  }
  return v;
}

JfSettings *jf_settings_load(void)
{
  JfSettings *s = jf_settings_new();
  g_autofree char *path = jf_settings_path();
  g_autoptr(GKeyFile) kf = g_key_file_new();
  if (!g_key_file_load_from_file(kf, path, G_KEY_FILE_NONE, NULL))
    return s;
  s->model_dir = get_string(kf, GROUP_MODEL, "folder");
  s->vae_dir = get_string(kf, GROUP_MODEL, "vae-folder");
  s->device = get_string(kf, GROUP_MODEL, "device");
  g_autofree char *weights = get_string(kf, GROUP_MODEL, "weights");
  if (weights && !llm_weight_format_parse(weights, &s->weights, NULL))
    s->weights = JF_WEIGHTS_BF16;
  s->steps = get_int(kf, GROUP_CREATE, "steps", s->steps);
  s->cfg = get_double(kf, GROUP_CREATE, "cfg", s->cfg);
  g_autofree char *mode = get_string(kf, GROUP_CREATE, "seed-mode");
  s->seed_locked = g_strcmp0(mode, "locked") == 0;
  g_autofree char *seed = get_string(kf, GROUP_CREATE, "seed");
  if (seed)
    g_ascii_string_to_unsigned(seed, 10, 0, G_MAXUINT64, &s->seed, NULL);
  s->batch = get_int(kf, GROUP_CREATE, "batch", s->batch);
  g_autofree char *preview = get_string(kf, GROUP_CREATE, "preview");
  s->preview = g_strcmp0(preview, "vae") == 0 ? JF_PREVIEW_VAE : JF_PREVIEW_FAST;
  s->preview_every = get_int(kf, GROUP_CREATE, "preview-every", s->preview_every);
  s->save_dir = get_string(kf, GROUP_CREATE, "save-folder");
  s->temperature = get_double(kf, GROUP_CHAT, "temperature", s->temperature);
  s->top_p = get_double(kf, GROUP_CHAT, "top-p", s->top_p);
  s->max_tokens = get_int(kf, GROUP_CHAT, "max-tokens", s->max_tokens);
  jf_settings_sanitize(s);
  return s;
}

gboolean jf_settings_save(const JfSettings *settings, GError **error)
{
  JfSettings copy = *settings;
  JfSettings *s = &copy;
  jf_settings_sanitize(s);
  g_autoptr(GKeyFile) kf = g_key_file_new();
  g_key_file_set_string(kf, GROUP_MODEL, "folder", s->model_dir ? s->model_dir : "");
  g_key_file_set_string(kf, GROUP_MODEL, "vae-folder", s->vae_dir ? s->vae_dir : "");
  g_key_file_set_string(kf, GROUP_MODEL, "device", s->device ? s->device : "");
  g_key_file_set_string(kf, GROUP_MODEL, "weights", llm_weight_format_name(s->weights));
  g_key_file_set_integer(kf, GROUP_CREATE, "steps", s->steps);
  g_key_file_set_double(kf, GROUP_CREATE, "cfg", s->cfg);
  g_key_file_set_string(kf, GROUP_CREATE, "seed-mode", s->seed_locked ? "locked" : "random");
  g_autofree char *seed = g_strdup_printf("%" G_GUINT64_FORMAT, s->seed);
  g_key_file_set_string(kf, GROUP_CREATE, "seed", seed);
  g_key_file_set_integer(kf, GROUP_CREATE, "batch", s->batch);
  g_key_file_set_string(kf, GROUP_CREATE, "preview", s->preview == JF_PREVIEW_VAE ? "vae" : "fast");
  g_key_file_set_integer(kf, GROUP_CREATE, "preview-every", s->preview_every);
  g_key_file_set_string(kf, GROUP_CREATE, "save-folder", s->save_dir ? s->save_dir : "");
  g_key_file_set_double(kf, GROUP_CHAT, "temperature", s->temperature);
  g_key_file_set_double(kf, GROUP_CHAT, "top-p", s->top_p);
  g_key_file_set_integer(kf, GROUP_CHAT, "max-tokens", s->max_tokens);

  g_autofree char *path = jf_settings_path();
  g_autofree char *dir = g_path_get_dirname(path);
  if (g_mkdir_with_parents(dir, 0700) != 0) {
    g_set_error(error, G_FILE_ERROR, g_file_error_from_errno(errno), "Cannot create %s", dir);
    return FALSE;
  }
  gsize len = 0;
  g_autofree char *data = g_key_file_to_data(kf, &len, NULL);
  return g_file_set_contents_full(path, data, (gssize)len, G_FILE_SET_CONTENTS_CONSISTENT, 0600, error);
}

char *jf_settings_get_save_dir(const JfSettings *s)
{
  if (s->save_dir && *s->save_dir)
    return g_strdup(s->save_dir);
  const char *pictures = g_get_user_special_dir(G_USER_DIRECTORY_PICTURES);
  if (pictures)
    return g_build_filename(pictures, "JanusFlow", NULL);
  return g_build_filename(g_get_home_dir(), "Pictures", "JanusFlow", NULL);
}
