# What the make_fixture.py scripts of our own golden fixtures (odd/, heads/) share: drawing the
# inputs, running the project's PyTorch reference (shared/reference/janusflow_ref.py, imported from
# where it is, never copied) on each case, and writing the goldens and expected/manifest.json in the
# layout tests/test_fixture.c grades (the tiny fixture's, ../tiny/expected/manifest.json).
import json
import os
import sys

import numpy as np

# Keys the reference's `selftest` reads from a case (compute_case); a fixture made without them
# (selftest=False, the odd fixture's older manifest) keeps only what tests/test_fixture.c reads.
SELFTEST_KEYS = ("prompt", "max_new_tokens", "temperature", "sft_prompt", "image", "steps", "cfg", "noise",
                 "vae_dir")


def write_image(path, img, rng, sigma):
    """Saves float RGB [h, w, 3] plus Gaussian noise of sigma (from rng), clipped, as 8-bit PNG."""
    from PIL import Image
    img = np.clip(img + rng.normal(0, sigma, img.shape), 0, 255).astype(np.uint8)
    Image.fromarray(img).save(path)


def write_noise(path, rng, shape):
    np.save(path, rng.standard_normal(shape).astype(np.float32))


class Fixture:
    """One fixture folder: model in janusflow/, VAE(s) beside it, goldens under expected/."""

    def __init__(self, reference_dir, fx, name, selftest=True):
        sys.path.insert(0, reference_dir)
        import janusflow_ref
        self.R, self.fx, self.name, self.selftest = janusflow_ref, fx, name, selftest
        self.model = self.R.load_janusflow(fx + "/janusflow")
        self.proc = self.R.Processor(fx + "/janusflow")
        self.vaes = {}
        self.cases = []

    def vae(self, vae_dir):
        if vae_dir not in self.vaes:
            self.vaes[vae_dir] = self.R.load_vae(f"{self.fx}/{vae_dir}")
        return self.vaes[vae_dir]

    @staticmethod
    def rel(file, desc):
        return {"file": file, "compare": "rel_l2", "tol": 0.02, "desc": desc}

    def save(self, case, name, arr):
        os.makedirs(f"{self.fx}/expected/{case}", exist_ok=True)
        np.save(f"{self.fx}/expected/{case}/{name}.npy", arr)
        return f"expected/{case}/{name}.npy"

    def _add(self, case):
        if not self.selftest:
            case = {k: v for k, v in case.items() if k not in SELFTEST_KEYS}
        self.cases.append(case)

    def chat(self, name, prompt, image=None, max_new_tokens=8):
        """A greedy chat case; image is a path inside the fixture or None."""
        import torch
        from PIL import Image
        pil = Image.open(f"{self.fx}/{image}").convert("RGB") if image else None
        with torch.no_grad():
            r = self.R.run_chat(self.model, self.proc, prompt, pil, max_new_tokens)
        exp = {"prompt_ids": {"file": self.save(name, "prompt_ids", r["prompt_ids"]), "compare": "exact"},
               "logits_0": self.rel(self.save(name, "logits_0", r["logits_0"]), "logits of the first new token"),
               "output_ids": {"file": self.save(name, "output_ids", r["output_ids"]), "compare": "ids_margin"}}
        if image:
            exp["image_embeds"] = self.rel(self.save(name, "image_embeds", r["image_embeds"]), "aligned SigLIP features")
        argv = ["chat", "--model", "{FIXTURE}/janusflow"] + (["--image", "{FIXTURE}/" + image] if image else []) + \
            ["--prompt", prompt, "--max-new-tokens", str(max_new_tokens), "--temperature", "0", "--dump", "{DUMP}"]
        case = {"name": name, "kind": "chat", "prompt": prompt, "max_new_tokens": max_new_tokens, "temperature": 0,
                "argv": argv, "sft_prompt": r["sft_prompt"], "expected": exp,
                "output_ids_rel_margins": [float(m) for m in r["rel_margins"]], "output_text": r["output_text"]}
        if image:
            case["image"] = image
        self._add(case)

    def generate(self, name, prompt, steps, cfg, noise="inputs/noise.npy", vae_dir="vae"):
        """A generation case from a noise latent in the fixture, decoded by the VAE in vae_dir."""
        import torch
        with torch.no_grad():
            r = self.R.run_generate(self.model, self.proc, self.vae(vae_dir), prompt,
                                    np.load(f"{self.fx}/{noise}"), steps, cfg)
        exp = {"prompt_ids": {"file": self.save(name, "prompt_ids", r["prompt_ids"]), "compare": "exact_gen"}}
        for k, d in (("velocity_0", "CFG-combined velocity of step 0"), ("latent", "final latent"),
                     ("image", "VAE output before clipping")):
            exp[k] = self.rel(self.save(name, k, r[k]), d)
        self.R._save_png(f"{self.fx}/expected/{name}/image.png", r["image_png"])
        argv = ["generate", "--model", "{FIXTURE}/janusflow", "--vae", "{FIXTURE}/" + vae_dir, "--prompt", prompt,
                "--steps", str(steps), "--cfg", str(cfg), "--noise", "{FIXTURE}/" + noise,
                "--out", "{OUT}", "--dump", "{DUMP}"]
        case = {"name": name, "kind": "generate", "prompt": prompt, "steps": steps, "cfg": cfg, "noise": noise}
        if vae_dir != "vae":
            case["vae_dir"] = vae_dir
        case.update({"argv": argv, "sft_prompt": r["sft_prompt"], "expected": exp,
                     "image_png": f"expected/{name}/image.png"})
        self._add(case)

    def write_manifest(self):
        ids = {k: getattr(self.proc, k) for k in ("image_start_id", "image_gen_id")}
        manifest = {"format": "janusflow-golden-v1", "fixture": self.name, "model_dir": "janusflow", "vae_dir": "vae",
                    "special_tokens": {"image_start_tag": {"id": int(ids["image_start_id"])},
                                       "image_gen_tag": {"id": int(ids["image_gen_id"])}},
                    "tolerances": "as ../tiny/expected/manifest.json", "cases": self.cases}
        with open(self.fx + "/expected/manifest.json", "w") as f:
            json.dump(manifest, f, indent=1, ensure_ascii=False)
        for c in self.cases:
            print(f"{c['name']}: {c.get('output_text', '')!r} margins {c.get('output_ids_rel_margins', '')}")
