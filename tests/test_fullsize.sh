#!/bin/sh
# The real JanusFlow-1.3B shapes (random weights, written by our own tool): the engine loads them
# and answers one chat step where the device has the memory, and says clearly that the model does
# not fit where it has not (lavapipe's 2 GiB heap), with bf16 and with 8-bit LLM weights. The bf16
# refusal suggests --weights q8_0 only when 8-bit weights would fit.
set -u
tmp=$(mktemp -d "${TMPDIR:-/tmp}/jf-full-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$JF_BUILD_DIR/tools/jf-make-checkpoint" --preset full --out "$tmp/m" \
  --tokenizer "$JF_TEST_DATA/tokenizer-deepseek-llm/tokenizer.json" >"$tmp/make.log" 2>&1 || {
  cat "$tmp/make.log"; echo "jf-make-checkpoint failed"; exit 1; }

q8_ran=0
for weights in q8_0 bf16; do
  out=$("$JF_JANUSFLOW" chat --model "$tmp/m" --weights "$weights" --prompt "Hello" --max-new-tokens 1 \
        --temperature 0 2>&1)
  rc=$?
  echo "$weights: $out"
  if [ "$rc" -eq 0 ]; then
    echo "$weights: the full-size model ran one chat step"
    [ "$weights" = q8_0 ] && q8_ran=1
    continue
  fi
  if [ "$rc" -ne 1 ] || [ "$(echo "$out" | wc -l)" -ne 1 ] ||
     ! echo "$out" | grep -q "model.safetensors: the model needs .* GiB of device memory for its weights ($weights)"; then
    echo "$weights: unexpected exit status $rc or message"
    exit 1
  fi
  if [ "$weights" = bf16 ]; then
    if [ "$q8_ran" -eq 1 ] && ! echo "$out" | grep -q "or --weights q8_0$"; then
      echo "bf16: 8-bit weights fit this device, but the refusal does not suggest them"; exit 1
    fi
    if [ "$q8_ran" -eq 0 ] && ! echo "$out" | grep -q "with 8-bit weights it would still need .* GiB"; then
      echo "bf16: 8-bit weights do not fit either, but the refusal does not say so"; exit 1
    fi
  fi
  echo "$weights: the full-size model was refused with a clear message"
done
exit 0
