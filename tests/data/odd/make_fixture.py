# Makes our second golden fixture, with sizes that are no tile's multiple (see README.md here).
# The checkpoint comes from our own tool; the golden outputs from the project's PyTorch reference
# (shared/reference/janusflow_ref.py, run from where it is, not copied), through ../fixture_lib.py.
# From a checkout next to shared/, after building:
#   build/tools/jf-make-checkpoint --preset odd --seed 4242 --out tests/data/odd/janusflow \
#       --vae-out tests/data/odd/vae --tokenizer tests/data/tiny/janusflow/tokenizer.json
#   /usr/bin/python3 tests/data/odd/make_fixture.py ../shared/reference tests/data/odd
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import fixture_lib as L  # noqa: E402

fx = sys.argv[2]
os.makedirs(fx + "/inputs", exist_ok=True)
rng = np.random.default_rng(4243)
# a non-square image with some structure (a gradient, a disc, noise), 77 x 50
yy, xx = np.mgrid[0:50, 0:77]
img = np.stack([xx * 3.3, yy * 5.0, 255 - xx * 2.0], -1)
img[(xx - 30) ** 2 + (yy - 22) ** 2 < 150] = [250, 40, 60]
L.write_image(fx + "/inputs/chat.png", img, rng, 12)
L.write_noise(fx + "/inputs/noise.npy", rng, (4, 6, 6))

# this fixture's manifest predates the selftest keys: its cases carry only what the grader reads
f = L.Fixture(sys.argv[1], fx, "odd", selftest=False)
f.chat("chat_image", "What is in this picture? 그림 7", "inputs/chat.png")
f.chat("chat_text", "Name three odd numbers, 홀수, like 77.")
f.generate("gen_cfg35", "A green ball on grass, 초록 공", 4, 3.5)
f.write_manifest()
