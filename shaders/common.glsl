// Shared helpers for every compute shader.
#ifndef JF_COMMON_GLSL
#define JF_COMMON_GLSL

// bf16 is the high half of an fp32 word: widening is a shift, exact.
float bf16_lo(uint packed) { return uintBitsToFloat(packed << 16); }
float bf16_hi(uint packed) { return uintBitsToFloat(packed & 0xffff0000u); }

// Element e of a bf16 array stored as packed uint pairs (works for odd lengths too).
#define BF16_AT(arr, e) (((e) & 1u) != 0u ? bf16_hi(arr[(e) >> 1]) : bf16_lo(arr[(e) >> 1]))

// Linear workgroup id for dispatches spread over x and y (vkrt_groups_linear).
uint jf_group_linear() { return gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x; }

// erf for fp32, max abs error 6e-8 (N. Juffa's minimax erff: two branches, the outer one via exp).
// GLSL has no erf; the Abramowitz-Stegun 7.1.26 fit (1.5e-7 .. 1e-6) is too coarse for exact GELU.
float jf_erf(float a) {
  float t = abs(a), s = a * a, r;
  if (t > 0.927734375) {
    r = fma(-1.72853470e-5, t, 3.83197126e-4);
    float u = fma(-3.88396438e-3, t, 2.42546219e-2);
    r = fma(r, s, u);
    r = fma(r, t, -1.06777877e-1);
    r = fma(r, t, -6.34846687e-1);
    r = fma(r, t, -1.28717512e-1);
    r = fma(r, t, -t);
    r = 1.0 - exp(r);
    r = a < 0.0 ? -r : r;
  } else {
    r = -5.96761703e-4;
    r = fma(r, s, 4.99119423e-3);
    r = fma(r, s, -2.67681349e-2);
    r = fma(r, s, 1.12819925e-1);
    r = fma(r, s, -3.76125336e-1);
    r = fma(r, s, 1.28379166e-1);
    r = fma(r, a, a);
  }
  return r;
}

// Exact (erf) GELU as torch.nn.GELU() and SiLU.
float jf_gelu(float x) { return 0.5 * x * (1.0 + jf_erf(x * 0.70710678118654752)); }
float jf_silu(float x) { return x / (1.0 + exp(-x)); }

#endif
