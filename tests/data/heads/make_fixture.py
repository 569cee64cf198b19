# Makes our third golden fixture, with awkward attention shapes and configs the official checkpoint
# does not use (see README.md here): head sizes that are no multiple of 4, grouped-query attention,
# LLM attention biases, a SigLIP image size that the patch does not divide, an odd UViT width, the
# ShallowUViT options use_bias / use_mid_block false, an explicit encoder padding, a stride-4 encoder
# with a two-out_conv decoder (upsamples 2), a latent of another size than the default, and a VAE
# without post_quant_conv / mid-block attention.
# The checkpoint comes from our own tool; the golden outputs from the project's PyTorch reference
# (shared/reference/janusflow_ref.py, run from where it is, not copied), through ../fixture_lib.py.
# The manifest's cases carry the keys the reference's `selftest` reads, so
# `janusflow_ref.py selftest tests/data/heads` recomputes them (bit-exact on cpu/fp32).
# From a checkout next to shared/, after building:
#   build/tools/jf-make-checkpoint --preset heads --seed 5151 --out tests/data/heads/janusflow \
#       --vae-out tests/data/heads/vae --vae-plain-out tests/data/heads/vae-plain \
#       --tokenizer tests/data/tiny/janusflow/tokenizer.json
#   /usr/bin/python3 tests/data/heads/make_fixture.py ../shared/reference tests/data/heads
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fixture_lib as L  # noqa: E402

fx = sys.argv[2]
os.makedirs(fx + "/inputs", exist_ok=True)
rng = np.random.default_rng(5152)
# a portrait image (taller than wide, so the square padding goes left and right, unlike the tiny
# and odd fixtures' landscape images): stripes, a square and noise, 45 x 70
yy, xx = np.mgrid[0:70, 0:45]
img = np.stack([128 + 100 * np.sin(yy / 6.0), xx * 5.0, 200 - yy * 2.5], -1)
img[(np.abs(xx - 20) < 9) & (np.abs(yy - 40) < 12)] = [30, 220, 90]
L.write_image(fx + "/inputs/chat.png", img, rng, 10)
# the default latent: num_image_tokens 9 -> a 3x3 token grid x stride 4 = 12x12
L.write_noise(fx + "/inputs/noise.npy", rng, (4, 12, 12))
# 8x8: (8 + 2 - 6) / 4 + 1 = 2, so 4 generation tokens where the default has 9; the latent's size is
# the noise's
L.write_noise(fx + "/inputs/noise8.npy", rng, (4, 8, 8))

f = L.Fixture(sys.argv[1], fx, "heads")
# what this fixture is for, so that a changed preset cannot quietly drop it
m, cfg = f.model, f.model.llm_config
assert cfg.head_dim == 10 and cfg.num_key_value_heads == 2 and cfg.num_attention_heads == 6, vars(cfg)
assert cfg.attention_bias and m.language_model.model.layers[0].self_attn.o_proj.bias is not None
vit = m.vision_und_enc_model.vit_cfg
assert vit["embed_dim"] // vit["num_heads"] == 6 and vit["img_size"] % vit["patch_size"] != 0, vit
assert m.vision_und_enc_model.num_patches == f.proc.num_image_tokens == 9
assert m.vision_gen_enc_model.out_channels % 2 == 1
# the ShallowUViT options JanusFlow leaves at their defaults: a 6x6 stride-4 patchify conv whose
# padding (1) config.json spells out (the default, kernel - stride = 2, gives the same grids here
# but samples other pixels), a decoder of two out_convs (upsamples 2: 2 x 2x2 unpatchify = the
# encoder's stride 4), an encoder built with use_bias false (no time_embed / ConvNeXt biases) but
# with its blocks, and a decoder with use_mid_block false (no blocks) that keeps its biases
enc, dec = m.vision_gen_enc_model, m.vision_gen_dec_model
with open(fx + "/janusflow/config.json") as c:
    jc = json.load(c)
assert jc["vision_gen_enc_config"]["params"]["padding"] == 1 and jc["vision_gen_enc_config"]["params"]["stride"] == 4
assert jc["vision_gen_dec_config"]["params"]["upsamples"] == 2
assert enc.in_conv.kernel_size == (6, 6) and enc.in_conv.stride == (4, 4) and enc.in_conv.padding == (1, 1)
C = enc.out_channels
assert len(dec.out_convs) == 2
# out_convs.0: the 2C skip concat -> C at twice the grid; out_convs.1: C -> the 4 latent channels
for oc, cin, cout in ((dec.out_convs[0], 2 * C, C), (dec.out_convs[1], C, 4)):
    assert oc.norm.weight.shape == (cin,) and oc.unpatch_conv.weight.shape == (4 * cout, cin, 1, 1), oc
    assert oc.unpatch_conv.bias is not None and oc.unpatch_conv.bias.shape == (4 * cout,)
# the default latent round-trips: 12x12 -> a 3x3 grid (num_image_tokens) -> 12x12; 8x8 -> 2x2 -> 8x8
import torch  # noqa: E402
with torch.no_grad():
    for hw, g in ((12, 3), (8, 2)):
        y = enc.in_conv(torch.zeros(1, 4, hw, hw))
        assert tuple(y.shape[-2:]) == (g, g), (hw, y.shape)
        for oc in dec.out_convs:
            y = oc(torch.cat([y, y], 1) if oc is dec.out_convs[0] else y)
        assert tuple(y.shape) == (1, 4, hw, hw), (hw, y.shape)
assert f.proc.num_image_tokens == 3 * 3
assert enc.time_embed.linear_1.bias is None and enc.time_embed.linear_2.bias is None
assert len(enc.mid_block.res_blocks) == 2 and enc.mid_block.res_blocks[0].cond_embeds_mapper.bias is None
assert dec.mid_block is None
plain = f.vae("vae-plain")
assert plain.post_quant_conv is None and not plain.decoder.mid_block.add_attention
with open(fx + "/vae-plain/config.json") as c:
    assert "shift_factor" in json.load(c)

f.chat("chat_image", "Which shape is in the middle? 가운데 10", "inputs/chat.png")
f.chat("chat_text", "Six heads share two keys: why, 왜?")
f.generate("gen_cfg3", "A paper kite over grey sea, 연", 3, 3.0)
f.generate("gen_lat8", "A wider field of red tulips, 튤립", 2, 2.0, noise="inputs/noise8.npy")
f.generate("gen_vae_plain", "A lamp in a dark room, 등", 2, 4.0, vae_dir="vae-plain")
f.write_manifest()
