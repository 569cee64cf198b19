// Shared helpers for every compute shader.
#ifndef JF_COMMON_GLSL
#define JF_COMMON_GLSL

// bf16 is the high half of an fp32 word: widening is a shift, exact.
float bf16_lo(uint packed) { return uintBitsToFloat(packed << 16); }
float bf16_hi(uint packed) { return uintBitsToFloat(packed & 0xffff0000u); }

#endif
