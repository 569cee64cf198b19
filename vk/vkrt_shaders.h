/* The embedded SPIR-V modules (generated shaders/shader_table.c). */
#pragma once
#include <stddef.h>
#include <stdint.h>

/* The SPIR-V words of compute shader `name` (as listed in shaders/meson.build) and their size in
 * bytes, or NULL if no such shader was built. */
const uint32_t *jf_shader_get(const char *name, size_t *size);
