#!/bin/sh
# compile.sh GLSLC SPIRV_VAL IN OUT_H [DEFINES...]
# Compiles one compute shader to SPIR-V, validates it with spirv-val and writes it as a C initializer
# list, so the binary embeds every shader and never looks one up at run time.
set -e
glslc="$1"; val="$2"; in="$3"; out="$4"; shift 4
tmp="$out.spv"
"$glslc" --target-env=vulkan1.2 -O -fshader-stage=compute -I"$(dirname "$in")" "$@" "$in" -o "$tmp"
"$val" --target-env vulkan1.2 "$tmp"
"$glslc" --target-env=vulkan1.2 -O -fshader-stage=compute -I"$(dirname "$in")" -mfmt=c "$@" "$in" -o "$out"
rm -f "$tmp"
