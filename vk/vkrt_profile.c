/* JANUSFLOW_PROFILE: GPU time per shader. With it set, every dispatch is followed by a timestamp
 * labelled with its shader (vkrt_seq.c), each submit or replay adds the intervals here, and the
 * context prints the table to stderr when it is freed. A developer's tool for finding the next
 * kernel to work on; the numbers include the barrier after each dispatch, and a sequence longer
 * than the query pool (1023 marks) is profiled only up to there. */
#include "vkrt_internal.h"
#include <stdio.h>

typedef struct {
  char *label;
  double ms;
  uint64_t calls, flops;
} ProfRow;

static void row_free(gpointer p)
{
  ProfRow *r = p;
  g_free(r->label);
  g_free(r);
}

void vkrt_profile_init(VkrtContext *ctx, bool on)
{
  ctx->profile = on ? g_hash_table_new_full(g_str_hash, g_str_equal, NULL, row_free) : NULL;
}

void vkrt_profile_add(VkrtContext *ctx, const char *label, double ms, uint64_t flops)
{
  if (!ctx->profile) return;
  g_mutex_lock(&ctx->lock);
  ProfRow *r = g_hash_table_lookup(ctx->profile, label);
  if (!r) {
    r = g_new0(ProfRow, 1);
    r->label = g_strdup(label);
    g_hash_table_insert(ctx->profile, r->label, r);
  }
  r->ms += ms;
  r->calls++;
  r->flops += flops;
  g_mutex_unlock(&ctx->lock);
}

static gint by_ms(gconstpointer a, gconstpointer b)
{
  const ProfRow *x = *(ProfRow *const *)a, *y = *(ProfRow *const *)b;
  return x->ms < y->ms ? 1 : x->ms > y->ms ? -1 : g_strcmp0(x->label, y->label);
}

void vkrt_profile_finish(VkrtContext *ctx)
{
  if (!ctx->profile) return;
  GPtrArray *rows = g_ptr_array_new();
  GHashTableIter it;
  gpointer key, val;
  g_hash_table_iter_init(&it, ctx->profile);
  while (g_hash_table_iter_next(&it, &key, &val)) g_ptr_array_add(rows, val);
  g_ptr_array_sort(rows, by_ms);
  double total = 0;
  for (guint i = 0; i < rows->len; i++) total += ((ProfRow *)g_ptr_array_index(rows, i))->ms;
  if (rows->len) {
    fprintf(stderr, "GPU time per shader (JANUSFLOW_PROFILE), %.1f ms in all:\n", total);
    fprintf(stderr, "  %-28s %8s %11s %6s %9s\n", "shader", "calls", "ms", "%", "GFLOP/s");
  }
  for (guint i = 0; i < rows->len; i++) {
    const ProfRow *r = g_ptr_array_index(rows, i);
    char rate[32] = "-";
    if (r->flops && r->ms > 0) g_snprintf(rate, sizeof rate, "%.1f", (double)r->flops / (r->ms * 1e6));
    fprintf(stderr, "  %-28s %8" G_GUINT64_FORMAT " %11.2f %6.1f %9s\n", r->label, r->calls, r->ms,
            total > 0 ? 100.0 * r->ms / total : 0.0, rate);
  }
  g_ptr_array_unref(rows);
  g_hash_table_destroy(ctx->profile);
  ctx->profile = NULL;
}
