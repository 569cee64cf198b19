/* Which descriptor bindings a compute shader may write, read from its SPIR-V, so that the
 * recorder (vkrt_seq.c) puts a barrier only between commands that conflict instead of after
 * every command. A binding counts as read-only only when the SPIR-V proves it: a uniform texel
 * buffer or sampled image, a uniform block, or a storage block whose variable or every member
 * is NonWritable (GLSL `readonly`). Anything else, and anything this parser does not
 * understand, counts as written: a wrong "read-only" would drop a needed barrier, a wrong
 * "written" only keeps one. */
#include "vkrt_internal.h"

#include <string.h>

enum {
  OP_TYPE_IMAGE = 25, OP_TYPE_SAMPLED_IMAGE = 27, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32,
  OP_VARIABLE = 59, OP_DECORATE = 71, OP_MEMBER_DECORATE = 72,
  DEC_BLOCK = 2, DEC_BUFFER_BLOCK = 3, DEC_NON_WRITABLE = 24, DEC_BINDING = 33, DEC_DESCRIPTOR_SET = 34,
  SC_UNIFORM_CONSTANT = 0, SC_UNIFORM = 2, SC_STORAGE_BUFFER = 12,
};

typedef struct {
  uint16_t op;
  int32_t binding, set;   /* -1: none */
  bool non_writable, buffer_block;
  uint32_t members, ro_members;
  uint32_t a, b;          /* pointer: storage class, pointee; variable: type; image: sampled */
} Id;

uint32_t vkrt_spirv_written_bindings(const uint32_t *code, size_t bytes)
{
  const uint32_t all = 0xffffffffu;
  size_t n = bytes / 4;
  if (!code || n < 5 || code[0] != 0x07230203u || code[3] == 0 || code[3] > (1u << 22)) return all;
  uint32_t bound = code[3];
  Id *ids = g_new0(Id, bound);
  for (uint32_t i = 0; i < bound; i++) ids[i].binding = ids[i].set = -1;
  bool ok = true;
  for (size_t at = 5; at < n && ok;) {
    uint32_t wc = code[at] >> 16, op = code[at] & 0xffffu;
    if (wc == 0 || at + wc > n) { ok = false; break; }
    const uint32_t *w = code + at + 1;
    uint32_t id = 0;
    switch (op) {
    case OP_DECORATE:
      if (wc < 3 || (id = w[0]) >= bound) { ok = false; break; }
      if (w[1] == DEC_BINDING && wc >= 4) ids[id].binding = (int32_t)w[2];
      else if (w[1] == DEC_DESCRIPTOR_SET && wc >= 4) ids[id].set = (int32_t)w[2];
      else if (w[1] == DEC_NON_WRITABLE) ids[id].non_writable = true;
      else if (w[1] == DEC_BUFFER_BLOCK) ids[id].buffer_block = true;
      break;
    case OP_MEMBER_DECORATE:
      if (wc < 4 || (id = w[0]) >= bound) { ok = false; break; }
      if (w[2] == DEC_NON_WRITABLE && w[1] < 32) ids[id].ro_members |= 1u << w[1];
      break;
    case OP_TYPE_STRUCT:
      if (wc < 2 || (id = w[0]) >= bound) { ok = false; break; }
      ids[id].op = OP_TYPE_STRUCT;
      ids[id].members = wc - 2;
      break;
    case OP_TYPE_POINTER:
      if (wc < 4 || (id = w[0]) >= bound) { ok = false; break; }
      ids[id].op = OP_TYPE_POINTER;
      ids[id].a = w[1];
      ids[id].b = w[2];
      break;
    case OP_TYPE_IMAGE:
      if (wc < 9 || (id = w[0]) >= bound) { ok = false; break; }
      ids[id].op = OP_TYPE_IMAGE;
      ids[id].a = w[6];  /* Sampled: 1 = sampled (read-only), 2 = storage image */
      break;
    case OP_TYPE_SAMPLED_IMAGE:
      if (wc < 3 || (id = w[0]) >= bound) { ok = false; break; }
      ids[id].op = OP_TYPE_IMAGE;
      ids[id].a = 1;
      break;
    case OP_VARIABLE:
      if (wc < 4 || (id = w[1]) >= bound) { ok = false; break; }
      ids[id].op = OP_VARIABLE;
      ids[id].a = w[0];
      break;
    default:
      break;
    }
    at += wc;
  }
  uint32_t written = 0;
  for (uint32_t v = 0; v < bound && ok; v++) {
    const Id *var = &ids[v];
    if (var->op != OP_VARIABLE || var->binding < 0) continue;
    if (var->binding >= 32 || var->set > 0) { ok = false; break; }
    bool read_only = false;
    const Id *ptr = var->a < bound ? &ids[var->a] : NULL;
    const Id *pointee = ptr && ptr->op == OP_TYPE_POINTER && ptr->b < bound ? &ids[ptr->b] : NULL;
    if (pointee) {
      uint32_t sc = ptr->a;
      bool storage = sc == SC_STORAGE_BUFFER || (sc == SC_UNIFORM && pointee->buffer_block);
      if (sc == SC_UNIFORM_CONSTANT)
        read_only = pointee->op == OP_TYPE_IMAGE && pointee->a == 1;
      else if (sc == SC_UNIFORM && !storage)
        read_only = true;  /* a uniform block */
      else if (storage && pointee->op == OP_TYPE_STRUCT) {
        uint32_t need = pointee->members >= 32 ? all : (1u << pointee->members) - 1;
        read_only = var->non_writable || (pointee->members > 0 && (pointee->ro_members & need) == need);
      }
    }
    if (!read_only) written |= 1u << var->binding;
  }
  g_free(ids);
  return ok ? written : all;
}
