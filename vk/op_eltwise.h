/* Shared by op_eltwise.c and op_matmul.c (activation epilogues). Private to vk/. */
#pragma once
#include "vkrt.h"

/* y = f(a, b) over n fp32 elements with shader family `shader` ("eltwise_add", "eltwise_gelu",
 * ...; the wrapper picks the vec4 variant, name + "4", when it can). */
void vkrt_eltwise(VkrtSeq *seq, const char *op, const char *shader, VkrtTensor y, VkrtTensor a,
                  VkrtTensor b, uint64_t n);
