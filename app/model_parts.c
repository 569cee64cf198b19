/* The vision and generation parts of a JfModel: SigLIP + understanding aligner, the UViT
 * encoder/decoder with their aligners, and the SDXL-VAE decoder. */
#include "model.h"
#include "siglip.h"
#include "uvit.h"
#include "vae.h"
#include "generate.h"

/* Images one generation run can hold unless a caller asks for more (model_ensure_gen_batch). */
#define DEFAULT_GEN_BATCH 1

static gboolean load_uvit(JfModel *m, int batch, GError **error)
{
  int c, h, w;
  gen_latent_size(m, &c, &h, &w);
  g_clear_pointer(&m->uvit, uvit_free);
  m->uvit = uvit_new(m->ctx, m->st, m->cfg, batch, h, w, error);
  return m->uvit != NULL;
}

/* The VAE decoder for batch latents of the model's latent size; the batch it holds is kept. */
static gboolean load_vae(JfModel *m, int batch, GError **error)
{
  int c, h, w;
  gen_latent_size(m, &c, &h, &w);
  g_clear_pointer(&m->vae, vae_free);
  if (!(m->vae = vae_new(m->ctx, m->vae_dir, m->vae_cfg, batch, h, w, error)))
    return FALSE;
  m->gen_batch = batch;
  return TRUE;
}

static gboolean gen_parts_loaded(const JfModel *m, GError **error)
{
  if (!m->uvit || !m->vae) {
    g_set_error(error, G_IO_ERROR, G_IO_ERROR_FAILED, "the generation parts are not loaded");
    return FALSE;
  }
  return TRUE;
}

gboolean model_load_parts(JfModel *m, unsigned what, JfProgressFunc progress, void *user, GError **error)
{
  if (what & JF_LOAD_VISION) {
    if (progress) progress(0.75, "uploading vision encoder", user);
    if (!(m->siglip = siglip_new(m->ctx, m->st, m->cfg, error)))
      return FALSE;
  }
  if (what & JF_LOAD_GENERATION) {
    if (progress) progress(0.85, "uploading generation encoder/decoder", user);
    if (!load_uvit(m, DEFAULT_GEN_BATCH, error))
      return FALSE;
    if (m->vae_dir) {
      if (progress) progress(0.92, "uploading VAE", user);
      if (!(m->vae_cfg = config_load_vae(m->vae_dir, error)) || !load_vae(m, DEFAULT_GEN_BATCH, error))
        return FALSE;
    }
  }
  return TRUE;
}

gboolean model_ensure_gen_batch(JfModel *m, int batch, GError **error)
{
  if (!gen_parts_loaded(m, error))
    return FALSE;
  if ((int)uvit_max_batch(m->uvit) < batch && !load_uvit(m, batch, error))
    return FALSE;
  return m->gen_batch >= batch || load_vae(m, batch, error);
}

gboolean model_ensure_gen_latent(JfModel *m, int h, int w, GError **error)
{
  if (!gen_parts_loaded(m, error))
    return FALSE;
  int c, ch, cw;
  gen_latent_size(m, &c, &ch, &cw);
  if (h == ch && w == cw)
    return TRUE;
  int batch = m->gen_batch, old_h = m->gen_lat_h, old_w = m->gen_lat_w;
  m->gen_lat_h = h;
  m->gen_lat_w = w;
  if (load_uvit(m, batch, error) && load_vae(m, batch, error))
    return TRUE;
  /* back to the size that worked, so the model stays usable */
  m->gen_lat_h = old_h;
  m->gen_lat_w = old_w;
  if (load_uvit(m, batch, NULL))
    load_vae(m, batch, NULL);
  return FALSE;
}

void model_free_parts(JfModel *m)
{
  g_clear_pointer(&m->siglip, siglip_free);
  g_clear_pointer(&m->uvit, uvit_free);
  g_clear_pointer(&m->vae, vae_free);
}
