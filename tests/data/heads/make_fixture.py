# Makes our third golden fixture, with awkward attention shapes (see README.md here): head sizes
# that are no multiple of 4 and grouped-query attention. The checkpoint comes from our own tool;
# the golden outputs from the project's PyTorch reference (shared/reference/janusflow_ref.py, run
# from where it is, not copied). The manifest's cases carry the keys the reference's `selftest`
# reads, so `janusflow_ref.py selftest tests/data/heads` recomputes them (bit-exact on cpu/fp32).
# From a checkout next to shared/, after building:
#   build/tools/jf-make-checkpoint --preset heads --seed 5151 --out tests/data/heads/janusflow \
#       --vae-out tests/data/heads/vae --tokenizer tests/data/tiny/janusflow/tokenizer.json
#   /usr/bin/python3 tests/data/heads/make_fixture.py ../shared/reference tests/data/heads
import json
import os
import sys

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, sys.argv[1])
import janusflow_ref as R  # noqa: E402

fx = sys.argv[2]
os.makedirs(fx + "/inputs", exist_ok=True)
rng = np.random.default_rng(5152)
# a portrait image (taller than wide, so the square padding goes left and right, unlike the tiny
# and odd fixtures' landscape images): stripes, a square and noise, 45 x 70
yy, xx = np.mgrid[0:70, 0:45]
img = np.stack([128 + 100 * np.sin(yy / 6.0), xx * 5.0, 200 - yy * 2.5], -1)
img[(np.abs(xx - 20) < 9) & (np.abs(yy - 40) < 12)] = [30, 220, 90]
img = np.clip(img + rng.normal(0, 10, img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img).save(fx + "/inputs/chat.png")
np.save(fx + "/inputs/noise.npy", rng.standard_normal((4, 6, 6)).astype(np.float32))

model = R.load_janusflow(fx + "/janusflow")
proc = R.Processor(fx + "/janusflow")
vae = R.load_vae(fx + "/vae")
cfg = model.llm_config
assert cfg.head_dim == 10 and cfg.num_key_value_heads == 2 and cfg.num_attention_heads == 6, vars(cfg)
assert model.vision_und_enc_model.vit_cfg["embed_dim"] // model.vision_und_enc_model.vit_cfg["num_heads"] == 6
ids = {k: getattr(proc, k) for k in ("image_start_id", "image_gen_id")}


def rel(file, desc):
    return {"file": file, "compare": "rel_l2", "tol": 0.02, "desc": desc}


def save(case, name, arr):
    os.makedirs(f"{fx}/expected/{case}", exist_ok=True)
    np.save(f"{fx}/expected/{case}/{name}.npy", arr)
    return f"expected/{case}/{name}.npy"


cases = []
chats = [("chat_image", "Which shape is in the middle? 가운데 10", "inputs/chat.png"),
         ("chat_text", "Six heads share two keys: why, 왜?", None)]
for name, prompt, image in chats:
    pil = Image.open(f"{fx}/{image}").convert("RGB") if image else None
    with torch.no_grad():
        r = R.run_chat(model, proc, prompt, pil, 8)
    exp = {"prompt_ids": {"file": save(name, "prompt_ids", r["prompt_ids"]), "compare": "exact"},
           "logits_0": rel(save(name, "logits_0", r["logits_0"]), "logits of the first new token"),
           "output_ids": {"file": save(name, "output_ids", r["output_ids"]), "compare": "ids_margin"}}
    if image:
        exp["image_embeds"] = rel(save(name, "image_embeds", r["image_embeds"]), "aligned SigLIP features")
    argv = ["chat", "--model", "{FIXTURE}/janusflow"] + (["--image", "{FIXTURE}/" + image] if image else []) + \
        ["--prompt", prompt, "--max-new-tokens", "8", "--temperature", "0", "--dump", "{DUMP}"]
    case = {"name": name, "kind": "chat", "prompt": prompt, "max_new_tokens": 8, "temperature": 0,
            "argv": argv, "sft_prompt": r["sft_prompt"], "expected": exp,
            "output_ids_rel_margins": [float(m) for m in r["rel_margins"]], "output_text": r["output_text"]}
    if image:
        case["image"] = image
    cases.append(case)

gens = [("gen_cfg3", "A paper kite over grey sea, 연", 3, 3.0)]
for name, prompt, steps, cfg_w in gens:
    with torch.no_grad():
        r = R.run_generate(model, proc, vae, prompt, np.load(fx + "/inputs/noise.npy"), steps, cfg_w)
    exp = {"prompt_ids": {"file": save(name, "prompt_ids", r["prompt_ids"]), "compare": "exact_gen"}}
    for k, d in (("velocity_0", "CFG-combined velocity of step 0"), ("latent", "final latent"),
                 ("image", "VAE output before clipping")):
        exp[k] = rel(save(name, k, r[k]), d)
    R._save_png(f"{fx}/expected/{name}/image.png", r["image_png"])
    argv = ["generate", "--model", "{FIXTURE}/janusflow", "--vae", "{FIXTURE}/vae", "--prompt", prompt,
            "--steps", str(steps), "--cfg", str(cfg_w), "--noise", "{FIXTURE}/inputs/noise.npy",
            "--out", "{OUT}", "--dump", "{DUMP}"]
    cases.append({"name": name, "kind": "generate", "prompt": prompt, "steps": steps, "cfg": cfg_w,
                  "noise": "inputs/noise.npy", "argv": argv, "sft_prompt": r["sft_prompt"], "expected": exp,
                  "image_png": f"expected/{name}/image.png"})

manifest = {"format": "janusflow-golden-v1", "fixture": "heads", "model_dir": "janusflow", "vae_dir": "vae",
            "special_tokens": {"image_start_tag": {"id": int(ids["image_start_id"])},
                               "image_gen_tag": {"id": int(ids["image_gen_id"])}},
            "tolerances": "as ../tiny/expected/manifest.json", "cases": cases}
with open(fx + "/expected/manifest.json", "w") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
print("\n".join(f"{c['name']}: {c.get('output_text', '')!r} margins {c.get('output_ids_rel_margins', '')}"
                for c in cases))
