/* budget: see budget.h. */
#include "budget.h"
#include <stdlib.h>

uint64_t budget_submit_flops(const VkrtContext *ctx)
{
  const char *env = g_getenv("JANUSFLOW_SUBMIT_GFLOP");
  if (env && *env) {
    char *end = NULL;
    double g = g_ascii_strtod(env, &end);
    if (end && *end == '\0' && g > 0 && g < 1e9)
      return MAX((uint64_t)(g * 1e9), 1);
  }
  switch (vkrt_context_info(ctx)->type) {
  case VKRT_DEVICE_DISCRETE:
    /* a low-end discrete GPU achieves 2-5 TFLOP/s fp32 */
    return 1000ull * 1000 * 1000 * 1000;
  case VKRT_DEVICE_CPU:
    /* no watchdog on a CPU driver; the bound only keeps cancel responsive (2-3 s on 2 cores of
     * lavapipe at 60 GFLOP/s). Smaller parts cost more than the submit itself there: on the
     * `small` model an Euler step in 3 parts took 0.5-1 s longer than in 2 (docs/PERFORMANCE.md) */
    return 160ull * 1000 * 1000 * 1000;
  default:
    /* integrated and unknown GPUs: 100-300 GFLOP/s achieved on the slow ones */
    return 32ull * 1000 * 1000 * 1000;
  }
}
