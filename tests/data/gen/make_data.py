# Makes the extra generation test data in this folder with the project's PyTorch reference
# (shared/reference/janusflow_ref.py, run from a checkout next to shared/):
#   /usr/bin/python3 tests/data/gen/make_data.py ../shared/reference tests/data/tiny tests/data/gen
# step2_*: the gen_cfg2 case's third step (z = latents[1], t = 2/3 * 1000): large sinusoid arguments.
# vae_6x10_*: the tiny VAE on a random non-square latent (model space, before / scaling_factor).
import sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
import janusflow_ref as R

fx, out = sys.argv[2], sys.argv[3]
model, proc = R.load_janusflow(fx + "/janusflow"), R.Processor(fx + "/janusflow")
vae = R.load_vae(fx + "/vae")
ids = np.load(fx + "/expected/gen_cfg2/prompt_ids.npy").tolist()
lat = np.load(fx + "/expected/gen_cfg2/debug/latents.npy")
with torch.no_grad():
    emb = R.gen_prefix_embeds(model, proc, ids)
    z = torch.from_numpy(lat[1])[None]
    dbg = {}
    v = R.gen_velocity(model, z, 2 / 3 * 1000.0, emb, 2.0, torch.float32, None, dbg)
    for k in ["t_emb_0", "z_emb_0", "llm_last_hidden_0", "dec_input_0", "v_cond_0", "v_uncond_0"]:
        np.save(out + "/step2_" + k.replace("_0", "") + ".npy", dbg[k].astype(np.float32))
    np.save(out + "/step2_z.npy", lat[1].astype(np.float32))
    np.save(out + "/step2_velocity.npy", R._np(v[0]).astype(np.float32))
    rng = np.random.default_rng(7)
    zl = rng.standard_normal((1, 4, 6, 10)).astype(np.float32)
    img = vae.decode(torch.from_numpy(zl) / vae.scaling_factor)
    np.save(out + "/vae_6x10_latent.npy", zl[0])
    np.save(out + "/vae_6x10_image.npy", R._np(img[0]).astype(np.float32))
