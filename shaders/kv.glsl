// K/V reads shared by the attention kernels (attention.comp, flash_attn.comp, attn_gemm.comp).
// A K/V head of D = 4 * D4 features is KV_T texels (RGBA32UI): fp32, one vec4 of features per
// texel; KV_F16 (the fp16 K/V cache, vkrt_op_attention's kv_f16), two vec4s per texel, eight
// halves, so D must be a multiple of 8. Texel t of a head holds feature vec4s KV_PER * t ..
// KV_PER * t + KV_PER - 1 and kv_vec4(w, i) unpacks the i-th. The math downstream is the same
// fp32 in both forms: only where the values come from differs. Include after D4 is declared.
#ifndef JF_KV_GLSL
#define JF_KV_GLSL

#if defined(KV_F16)
const uint KV_PER = 2u;
const uint KV_T = D4 / 2u;  // texels per K/V head
vec4 kv_vec4(uvec4 w, uint i)
{
  return i == 0u ? vec4(unpackHalf2x16(w.x), unpackHalf2x16(w.y)) : vec4(unpackHalf2x16(w.z), unpackHalf2x16(w.w));
}
#else
const uint KV_PER = 1u;
#define KV_T D4
vec4 kv_vec4(uvec4 w, uint i) { return uintBitsToFloat(w); }
#endif

// a += x[i] * (feature vec4 i of the head starting at texel `base` of T), i = 0 .. D4-1, in order;
// x[i] += s * (feature vec4 i of that head). (The fp32 forms are written out as single loops so
// that the fp32 kernels compile to what they were before the fp16 cache.)
#if defined(KV_F16)
#define KV_DOT(a, x, T, base)                                                   \
  for (uint kt_ = 0u; kt_ < KV_T; kt_++) {                                      \
    uvec4 kw_ = texelFetch(T, (base) + int(kt_));                               \
    a += x[2u * kt_] * kv_vec4(kw_, 0u);                                        \
    a += x[2u * kt_ + 1u] * kv_vec4(kw_, 1u);                                   \
  }
#define KV_AXPY(x, s, T, base)                                                  \
  for (uint kt_ = 0u; kt_ < KV_T; kt_++) {                                      \
    uvec4 kw_ = texelFetch(T, (base) + int(kt_));                               \
    x[2u * kt_] += s * kv_vec4(kw_, 0u);                                        \
    x[2u * kt_ + 1u] += s * kv_vec4(kw_, 1u);                                   \
  }
#else
#define KV_DOT(a, x, T, base) \
  for (uint kt_ = 0u; kt_ < KV_T; kt_++) a += x[kt_] * uintBitsToFloat(texelFetch(T, (base) + int(kt_)));
#define KV_AXPY(x, s, T, base) \
  for (uint kt_ = 0u; kt_ < KV_T; kt_++) x[kt_] += s * uintBitsToFloat(texelFetch(T, (base) + int(kt_)));
#endif

#endif
