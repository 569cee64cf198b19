#version 450
// F32_TO_F16: fp32 values to fp16, two per 32-bit word (the first in the low half), for the
// fp16 K/V cache (vkrt_op_f32_to_f16): one or two (src, dst) pairs of n_words words each in one
// dispatch (the new K and V rows of a layer together). The rounding is done in integer
// arithmetic so that it is the same on every device: round to nearest, ties to even; magnitudes
// that round to 65520 or more become +-inf, NaN stays NaN (quiet), values below the smallest half
// subnormal (2^-24) round to +-0 or to it. (packHalf2x16 would leave the rounding of the
// overflow and of ties to the implementation.)
#include "common.glsl"
layout(local_size_x = 64) in;
layout(binding = 0) writeonly buffer Dst0 { uint dst0[]; };
layout(binding = 1) readonly buffer Src0 { uint src0[]; };
layout(binding = 2) writeonly buffer Dst1 { uint dst1[]; };
layout(binding = 3) readonly buffer Src1 { uint src1[]; };
// n_words: output words per pair (input floats / 2); offsets in words
layout(push_constant) uniform P { uint n_words, pairs, dst0_off, src0_off, dst1_off, src1_off; } p;

uint f32_to_f16(uint x)
{
  uint sign = (x >> 16) & 0x8000u, a = x & 0x7fffffffu;
  if (a > 0x7f800000u) return sign | 0x7e00u;     // NaN
  if (a >= 0x477ff000u) return sign | 0x7c00u;    // >= 65520 (or inf): inf
  if (a >= 0x38800000u) {                         // a normal half: drop 13 bits, ties to even
    a += 0xfffu + ((a >> 13) & 1u);
    return sign | ((a - 0x38000000u) >> 13);      // rebias 127 -> 15 (a carry may make it the next power)
  }
  uint e = a >> 23;                               // a half subnormal: the value in units of 2^-24
  if (e < 102u) return sign;                      // below 2^-25: 0 (2^-25 itself ties to 0 below)
  uint m = (a & 0x7fffffu) | 0x800000u, s = 126u - e;  // value = m * 2^(e - 150) = (m >> s) units
  uint k = m >> s, rem = m & ((1u << s) - 1u), halfway = 1u << (s - 1u);
  if (rem > halfway || (rem == halfway && (k & 1u) != 0u)) k++;
  return sign | k;                                // k = 1024 is the smallest normal, correctly
}

void main() {
  uint i = jf_group_linear() * 64u + gl_LocalInvocationID.x;
  if (i >= p.n_words * p.pairs) return;
  if (i < p.n_words) {
    uint s = p.src0_off + 2u * i;
    dst0[p.dst0_off + i] = f32_to_f16(src0[s]) | (f32_to_f16(src0[s + 1u]) << 16);
  } else {
    uint s = p.src1_off + 2u * (i - p.n_words);
    dst1[p.dst1_off + i - p.n_words] = f32_to_f16(src1[s]) | (f32_to_f16(src1[s + 1u]) << 16);
  }
}
