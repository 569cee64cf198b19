# Makes our second golden fixture, with sizes that are no tile's multiple (see README.md here).
# The checkpoint comes from our own tool; the golden outputs from the project's PyTorch reference
# (shared/reference/janusflow_ref.py, run from where it is, not copied). From a checkout next to
# shared/, after building:
#   build/tools/jf-make-checkpoint --preset odd --seed 4242 --out tests/data/odd/janusflow \
#       --vae-out tests/data/odd/vae --tokenizer tests/data/tiny/janusflow/tokenizer.json
#   /usr/bin/python3 tests/data/odd/make_fixture.py ../shared/reference tests/data/odd
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
rng = np.random.default_rng(4243)
# a non-square image with some structure (a gradient, a disc, noise), 77 x 50
yy, xx = np.mgrid[0:50, 0:77]
img = np.stack([xx * 3.3, yy * 5.0, 255 - xx * 2.0], -1)
img[(xx - 30) ** 2 + (yy - 22) ** 2 < 150] = [250, 40, 60]
img = np.clip(img + rng.normal(0, 12, img.shape), 0, 255).astype(np.uint8)
Image.fromarray(img).save(fx + "/inputs/chat.png")
np.save(fx + "/inputs/noise.npy", rng.standard_normal((4, 6, 6)).astype(np.float32))

model = R.load_janusflow(fx + "/janusflow")
proc = R.Processor(fx + "/janusflow")
vae = R.load_vae(fx + "/vae")
ids = {k: getattr(proc, k) for k in ("image_start_id", "image_gen_id")}


def rel(file, desc):
    return {"file": file, "compare": "rel_l2", "tol": 0.02, "desc": desc}


def save(case, name, arr):
    os.makedirs(f"{fx}/expected/{case}", exist_ok=True)
    np.save(f"{fx}/expected/{case}/{name}.npy", arr)
    return f"expected/{case}/{name}.npy"


cases = []
chats = [("chat_image", "What is in this picture? 그림 7", "inputs/chat.png"),
         ("chat_text", "Name three odd numbers, 홀수, like 77.", None)]
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
    cases.append({"name": name, "kind": "chat", "argv": argv, "expected": exp,
                  "output_ids_rel_margins": [float(m) for m in r["rel_margins"]],
                  "output_text": r["output_text"]})

gens = [("gen_cfg35", "A green ball on grass, 초록 공", 4, 3.5)]
for name, prompt, steps, cfg in gens:
    with torch.no_grad():
        r = R.run_generate(model, proc, vae, prompt, np.load(fx + "/inputs/noise.npy"), steps, cfg)
    exp = {"prompt_ids": {"file": save(name, "prompt_ids", r["prompt_ids"]), "compare": "exact_gen"}}
    for k, d in (("velocity_0", "CFG-combined velocity of step 0"), ("latent", "final latent"),
                 ("image", "VAE output before clipping")):
        exp[k] = rel(save(name, k, r[k]), d)
    R._save_png(f"{fx}/expected/{name}/image.png", r["image_png"])
    argv = ["generate", "--model", "{FIXTURE}/janusflow", "--vae", "{FIXTURE}/vae", "--prompt", prompt,
            "--steps", str(steps), "--cfg", str(cfg), "--noise", "{FIXTURE}/inputs/noise.npy",
            "--out", "{OUT}", "--dump", "{DUMP}"]
    cases.append({"name": name, "kind": "generate", "argv": argv, "expected": exp,
                  "image_png": f"expected/{name}/image.png"})

manifest = {"format": "janusflow-golden-v1", "fixture": "odd", "model_dir": "janusflow", "vae_dir": "vae",
            "special_tokens": {"image_start_tag": {"id": int(ids["image_start_id"])},
                               "image_gen_tag": {"id": int(ids["image_gen_id"])}},
            "tolerances": "as ../tiny/expected/manifest.json", "cases": cases}
with open(fx + "/expected/manifest.json", "w") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
print("\n".join(f"{c['name']}: {c.get('output_text', '')!r}" for c in cases))
