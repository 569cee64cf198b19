#!/bin/sh
# The real JanusFlow-1.3B shapes (random weights, written by our own tool): the engine loads them
# and answers one chat step where the device has the memory, and says clearly that the model does
# not fit where it has not (lavapipe's 2 GiB heap).
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jf-full-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$JF_BUILD_DIR/tools/jf-make-checkpoint" --preset full --out "$tmp/m" \
  --tokenizer "$JF_TEST_DATA/tokenizer-deepseek-llm/tokenizer.json" >"$tmp/make.log" 2>&1 || {
  cat "$tmp/make.log"; echo "jf-make-checkpoint failed"; exit 1; }
out=$("$JF_JANUSFLOW" chat --model "$tmp/m" --prompt "Hello" --max-new-tokens 1 --temperature 0 2>&1)
rc=$?
echo "$out"
if [ "$rc" -eq 0 ]; then
  echo "the full-size model ran one chat step"
  exit 0
fi
if [ "$rc" -eq 1 ] && [ "$(echo "$out" | wc -l)" -eq 1 ] && echo "$out" | grep -q "model.safetensors: the model needs .* GiB of device memory"; then
  echo "the full-size model was refused with a clear message"
  exit 0
fi
echo "unexpected exit status $rc or message"
exit 1
