#!/bin/sh
# probe-coopmat-khr.sh GLSLC SPIRV_VAL SOURCE
# Exit 0 when this glslc compiles the GL_KHR_cooperative_matrix build of SOURCE and this
# spirv-val accepts it (Debian 12's shaderc 2023.2 and SPIRV-Tools 2023.1 do not; Debian 13's do).
glslc="$1"; val="$2"; src="$3"
tmp=$(mktemp) || exit 1
trap 'rm -f "$tmp"' EXIT
"$glslc" --target-env=vulkan1.2 -O -fshader-stage=compute -I"$(dirname "$src")" -DKHR "$src" -o "$tmp" 2>/dev/null &&
  "$val" --target-env vulkan1.2 "$tmp" 2>/dev/null
