/* janusflow info: every Vulkan device with the limits that matter to the engine, the one that
 * would be chosen (and why), and which optional Vulkan features the engine uses on it. */
#include "chat.h"
#include "cli.h"
#include "llm.h"
#include "ops.h"
#include "pipelines.h"
#include "vkrt.h"

#include <json-glib/json-glib.h>
#include <glib/gstdio.h>
#include <stdio.h>
#include <sys/stat.h>

static char *api_string(uint32_t v)
{
  /* VK_API_VERSION_MAJOR/MINOR/PATCH without pulling in vulkan.h */
  return g_strdup_printf("%u.%u.%u", (v >> 22) & 0x7fu, (v >> 12) & 0x3ffu, v & 0xfffu);
}

static char *mib(uint64_t bytes)
{
  return g_strdup_printf("%.0f MiB", (double)bytes / (1024.0 * 1024.0));
}

static void print_device(const VkrtDeviceInfo *d, bool chosen)
{
  char *api = api_string(d->api_version), *heap = mib(d->device_local_bytes);
  char *range = mib(d->max_storage_range), *alloc = mib(d->max_alloc);
  printf("%s device %u: %s\n", chosen ? "*" : " ", d->index, d->name);
  printf("    type %s, driver %s, Vulkan %s%s\n", vkrt_device_type_name(d->type), d->driver, api,
         d->usable ? "" : " (cannot run the engine: needs Vulkan 1.2 and a compute queue)");
  printf("    device-local heap %s, max storage binding %s, max allocation %s\n", heap, range, alloc);
  printf("    subgroup size %u, shared memory %u KiB, workgroup invocations %u, timestamps %s\n",
         d->subgroup_size, d->max_shared_bytes / 1024, d->max_wg_invocations, d->has_timestamps ? "yes" : "no");
  g_free(api); g_free(heap); g_free(range); g_free(alloc);
}

static void json_device(JsonBuilder *b, const VkrtDeviceInfo *d)
{
  char *api = api_string(d->api_version);
  json_builder_begin_object(b);
  json_builder_set_member_name(b, "index"); json_builder_add_int_value(b, d->index);
  json_builder_set_member_name(b, "name"); json_builder_add_string_value(b, d->name);
  json_builder_set_member_name(b, "type"); json_builder_add_string_value(b, vkrt_device_type_name(d->type));
  json_builder_set_member_name(b, "driver"); json_builder_add_string_value(b, d->driver);
  json_builder_set_member_name(b, "api_version"); json_builder_add_string_value(b, api);
  json_builder_set_member_name(b, "vendor_id"); json_builder_add_int_value(b, d->vendor_id);
  json_builder_set_member_name(b, "device_id"); json_builder_add_int_value(b, d->device_id);
  json_builder_set_member_name(b, "device_local_bytes"); json_builder_add_int_value(b, (gint64)d->device_local_bytes);
  json_builder_set_member_name(b, "max_storage_range"); json_builder_add_int_value(b, (gint64)d->max_storage_range);
  json_builder_set_member_name(b, "max_alloc"); json_builder_add_int_value(b, (gint64)d->max_alloc);
  json_builder_set_member_name(b, "subgroup_size"); json_builder_add_int_value(b, d->subgroup_size);
  json_builder_set_member_name(b, "shared_memory_bytes"); json_builder_add_int_value(b, d->max_shared_bytes);
  json_builder_set_member_name(b, "max_workgroup_invocations"); json_builder_add_int_value(b, d->max_wg_invocations);
  json_builder_set_member_name(b, "timestamps"); json_builder_add_boolean_value(b, d->has_timestamps);
  json_builder_set_member_name(b, "push_descriptor"); json_builder_add_boolean_value(b, d->has_push_descriptor);
  json_builder_set_member_name(b, "fp16"); json_builder_add_boolean_value(b, d->has_fp16);
  json_builder_set_member_name(b, "int8"); json_builder_add_boolean_value(b, d->has_int8);
  json_builder_set_member_name(b, "cooperative_matrix"); json_builder_add_boolean_value(b, d->has_coopmat);
  json_builder_set_member_name(b, "usable"); json_builder_add_boolean_value(b, d->usable);
  json_builder_end_object(b);
  g_free(api);
}

/* The optional features, as (name, used by the engine on this device, note). */
typedef struct { const char *key, *name; bool used; const char *note; } Feature;

/* Notes built at run time live in `owned` (freed by the caller). */
static int features_of(VkrtContext *ctx, bool validation, Feature *f, GPtrArray *owned)
{
  const VkrtDeviceInfo *d = vkrt_context_info(ctx);
  int n = 0;
  f[n++] = (Feature){ "push_descriptor", "push descriptors (VK_KHR_push_descriptor)", d->has_push_descriptor, "required" };
  f[n++] = (Feature){ "texel_buffers", "uniform texel buffers for GEMM operands", true, "always" };
  bool gpu = d->type != VKRT_DEVICE_CPU;
  VkrtGemmTile big, mid;
  vkrt_ops_gemm_tile(d, 8192, 8192, &big);
  vkrt_ops_gemm_tile(d, 64, 64, &mid);
  char *tiles = big.bm == mid.bm && big.bn == mid.bn
    ? g_strdup_printf("%ux%u tiles, %ux%u per thread, BK %u", mid.bm, mid.bn, mid.tm, mid.tn, mid.bk)
    : g_strdup_printf("%ux%u tiles (%ux%u per thread) for large outputs, else %ux%u (%ux%u), BK %u", big.bm, big.bn,
                      big.tm, big.tn, mid.bm, mid.bn, mid.tm, mid.tn, mid.bk);
  g_ptr_array_add(owned, tiles);
  char *smem = gpu ? g_strdup_printf("GPU kernel: %s", tiles)
                   : g_strdup("CPU device: register-tiled texel-buffer GEMM instead; JANUSFLOW_GEMM=shared forces it");
  g_ptr_array_add(owned, smem);
  f[n++] = (Feature){ "shared_memory_gemm", "shared-memory tiled GEMM", gpu, smem };
  f[n++] = (Feature){ "flash_attention", "flash attention (>= 16 queries per sequence)", gpu,
                      gpu ? "GPU kernel: query blocks share K/V tiles in shared memory"
                          : "CPU device: score GEMMs and a softmax instead; JANUSFLOW_ATTENTION=flash forces it" };
  f[n++] = (Feature){ "timestamps", "timestamp queries", d->has_timestamps, d->has_timestamps ? "per-stage timings" : "unsupported" };
  f[n++] = (Feature){ "fp16", "fp16 arithmetic", false, d->has_fp16 ? "supported, not used (fp32 math)" : "unsupported" };
  f[n++] = (Feature){ "int8", "int8 arithmetic", false, d->has_int8 ? "supported, not used" : "unsupported" };
  /* runs the self-check on devices with a cooperative-matrix kernel (first use on a context) */
  const char *why = NULL;
  bool coop = vkrt_ops_coopmat_usable(ctx, &why);
  char *cnote = d->coopmat_m ? g_strdup_printf("%s %ux%ux%u fp16 -> fp32: %s", d->coopmat_khr ? "KHR" : "NV", d->coopmat_m,
                                               d->coopmat_n, d->coopmat_k, why)
                             : g_strdup(why && *why ? why : "unsupported");
  g_ptr_array_add(owned, cnote);
  f[n++] = (Feature){ "cooperative_matrix", "cooperative-matrix GEMM (>= 64 rows)", coop, cnote };
  f[n++] = (Feature){ "subgroup_ops", "subgroup arithmetic (GEMV, decode attention)", d->has_subgroup_arith,
                      d->has_subgroup_arith ? "used" : "unsupported: fallback kernels" };
  f[n++] = (Feature){ "validation", "validation layer", validation, validation ? "on (JANUSFLOW_VALIDATE)" : "off" };
  return n;
}

/* The K/V cache a chat of the default context would take on this device with the full
 * JanusFlow-1.3B LLM (24 layers, 16 heads of 128: kv_dim 2048). */
static JfKvFormat kv_facts(const VkrtDeviceInfo *d, uint64_t *bytes)
{
  JfKvFormat f = llm_kv_format_for(d->type, 128);
  *bytes = llm_kv_bytes_for(24, 2048, f, 1, CHAT_DEFAULT_CONTEXT);
  return f;
}

/* Where the chosen device's pipeline cache lives (what cli_open_device reads and writes), and
 * its size now; *file NULL when the cache is off. */
static void cache_facts(const VkrtDeviceInfo *d, char **file, gint64 *bytes)
{
  char *dir = pipelines_cache_dir();
  *file = vkrt_pipeline_cache_file(dir, d);
  *bytes = -1;
  GStatBuf st;
  if (*file && g_stat(*file, &st) == 0 && S_ISREG(st.st_mode))
    *bytes = (gint64)st.st_size;
  g_free(dir);
}

/* Which kernel each kind of work gets (as vkrt_op_matmul / vkrt_op_attention choose). */
typedef struct { const char *key, *name, *path; } Kernel;

static int kernels_of(VkrtContext *ctx, Kernel *k)
{
  int n = 0;
  /* K = 2048: aligned operands, as every LLM GEMM; 16 heads of 128 as the LLM */
  k[n++] = (Kernel){ "gemm_decode", "GEMM, 1 row (decode)", vkrt_ops_gemm_path(ctx, 1, 2048) };
  k[n++] = (Kernel){ "gemm_small", "GEMM, 20 rows", vkrt_ops_gemm_path(ctx, 20, 2048) };
  k[n++] = (Kernel){ "gemm_prefill", "GEMM, 600 rows (prefill, image block)", vkrt_ops_gemm_path(ctx, 600, 2048) };
  k[n++] = (Kernel){ "attention_decode", "attention, 1 query (decode)", vkrt_ops_attention_path(ctx, 1, 16, 128) };
  k[n++] = (Kernel){ "attention_prefill", "attention, 600 queries (prefill)", vkrt_ops_attention_path(ctx, 600, 16, 128) };
  k[n++] = (Kernel){ "attention_image", "attention, 577 queries (image block)", vkrt_ops_attention_path(ctx, 577, 16, 128) };
  return n;
}

int cli_info_main(int argc, char **argv)
{
  char *device = NULL;
  gboolean json = FALSE;
  GOptionEntry entries[] = {
    { "device", 'd', 0, G_OPTION_ARG_STRING, &device, "Device index or name substring (default: best; env JANUSFLOW_DEVICE)", "SEL" },
    { "json", 0, 0, G_OPTION_ARG_NONE, &json, "Print JSON", NULL },
    { NULL, 0, 0, 0, NULL, NULL, NULL },
  };
  GOptionContext *oc = g_option_context_new("- list Vulkan devices and the features the engine uses");
  g_option_context_add_main_entries(oc, entries, NULL);
  GError *error = NULL;
  if (!g_option_context_parse(oc, &argc, &argv, &error)) {
    cli_print_error("info: %s", error->message);
    g_error_free(error);
    g_option_context_free(oc);
    return 2;
  }
  g_option_context_free(oc);
  if (argc > 1) {
    cli_print_error("info: unexpected argument '%s'", argv[1]);
    g_free(device);
    return 2;
  }
  const char *sel = device ? device : g_getenv("JANUSFLOW_DEVICE");

  GArray *devs = vkrt_list_devices(&error);
  if (!devs) {
    cli_print_error("info: %s", error->message);
    g_error_free(error);
    g_free(device);
    return 1;
  }
  char *why = NULL;
  int pick = vkrt_select_device(devs, sel, &why, &error);
  /* the chosen device must also take a context (extensions, memory types) */
  VkrtContext *ctx = NULL;
  bool validation = false;
  if (pick >= 0) {
    char *idx = g_strdup_printf("%u", g_array_index(devs, VkrtDeviceInfo, pick).index);
    ctx = vkrt_context_new(&(VkrtOptions){ .device = idx }, &error);
    g_free(idx);
    const char *v = g_getenv("JANUSFLOW_VALIDATE");
    validation = ctx && v && *v && g_strcmp0(v, "0") != 0;
  }
  const VkrtDeviceInfo *chosen = ctx ? vkrt_context_info(ctx) : NULL;

  if (json) {
    JsonBuilder *b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    for (guint i = 0; i < devs->len; i++) json_device(b, &g_array_index(devs, VkrtDeviceInfo, i));
    json_builder_end_array(b);
    json_builder_set_member_name(b, "chosen");
    if (chosen) {
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "index"); json_builder_add_int_value(b, chosen->index);
      json_builder_set_member_name(b, "name"); json_builder_add_string_value(b, chosen->name);
      json_builder_set_member_name(b, "reason"); json_builder_add_string_value(b, why ? why : "");
      json_builder_set_member_name(b, "host_mapped_memory"); json_builder_add_boolean_value(b, vkrt_context_host_mapped(ctx));
      json_builder_set_member_name(b, "features");
      json_builder_begin_object(b);
      Feature f[16];
      GPtrArray *owned = g_ptr_array_new_with_free_func(g_free);
      int nf = features_of(ctx, validation, f, owned);
      for (int i = 0; i < nf; i++) {
        json_builder_set_member_name(b, f[i].key);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "used"); json_builder_add_boolean_value(b, f[i].used);
        json_builder_set_member_name(b, "note"); json_builder_add_string_value(b, f[i].note);
        json_builder_end_object(b);
      }
      json_builder_end_object(b);
      g_ptr_array_free(owned, TRUE);
      json_builder_set_member_name(b, "kernels");
      json_builder_begin_object(b);
      Kernel k[8];
      int nk = kernels_of(ctx, k);
      for (int i = 0; i < nk; i++) {
        json_builder_set_member_name(b, k[i].key);
        json_builder_add_string_value(b, k[i].path);
      }
      json_builder_end_object(b);
      uint64_t kvb = 0;
      JfKvFormat kvf = kv_facts(chosen, &kvb);
      json_builder_set_member_name(b, "kv_cache");
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "format"); json_builder_add_string_value(b, llm_kv_format_name(kvf));
      json_builder_set_member_name(b, "chat_default_bytes"); json_builder_add_int_value(b, (gint64)kvb);
      json_builder_end_object(b);
      char *cfile = NULL;
      gint64 cbytes = -1;
      cache_facts(chosen, &cfile, &cbytes);
      json_builder_set_member_name(b, "pipeline_cache");
      json_builder_begin_object(b);
      json_builder_set_member_name(b, "file");
      if (cfile) json_builder_add_string_value(b, cfile);
      else json_builder_add_null_value(b);
      json_builder_set_member_name(b, "bytes");
      if (cbytes >= 0) json_builder_add_int_value(b, cbytes);
      else json_builder_add_null_value(b);
      json_builder_end_object(b);
      g_free(cfile);
      json_builder_end_object(b);
    } else {
      json_builder_add_null_value(b);
    }
    if (error) {
      json_builder_set_member_name(b, "error");
      json_builder_add_string_value(b, error->message);
    }
    json_builder_end_object(b);
    JsonGenerator *gen = json_generator_new();
    json_generator_set_pretty(gen, TRUE);
    JsonNode *root = json_builder_get_root(b);
    json_generator_set_root(gen, root);
    char *text = json_generator_to_data(gen, NULL);
    printf("%s\n", text);
    g_free(text);
    json_node_unref(root);
    g_object_unref(gen);
    g_object_unref(b);
  } else {
    printf("Vulkan devices:\n");
    for (guint i = 0; i < devs->len; i++)
      print_device(&g_array_index(devs, VkrtDeviceInfo, i), chosen && (int)i == pick);
    if (chosen) {
      printf("\nChosen: device %u, %s: %s\n", chosen->index, chosen->name, why);
      printf("Memory: %s\n", vkrt_context_host_mapped(ctx) ? "host-visible device-local (mapped, no staging copies)"
                                                           : "device-local with staging copies");
      printf("Features used by the engine:\n");
      Feature f[16];
      GPtrArray *owned = g_ptr_array_new_with_free_func(g_free);
      int nf = features_of(ctx, validation, f, owned);
      for (int i = 0; i < nf; i++) printf("  %-44s %-3s  (%s)\n", f[i].name, f[i].used ? "yes" : "no", f[i].note);
      g_ptr_array_free(owned, TRUE);
      printf("Kernels on this device (JANUSFLOW_GEMM, JANUSFLOW_ATTENTION override):\n");
      Kernel k[8];
      int nk = kernels_of(ctx, k);
      for (int i = 0; i < nk; i++) printf("  %-44s %s\n", k[i].name, k[i].path);
      uint64_t kvb = 0;
      JfKvFormat kvf = kv_facts(chosen, &kvb);
      printf("K/V cache: %s (JANUSFLOW_KV=f16|f32 overrides), %.0f MiB for a %u-token chat with JanusFlow-1.3B\n",
             llm_kv_format_name(kvf), (double)kvb / (1024.0 * 1024.0), CHAT_DEFAULT_CONTEXT);
      char *cfile = NULL;
      gint64 cbytes = -1;
      cache_facts(chosen, &cfile, &cbytes);
      if (!cfile)
        printf("Pipeline cache: off (JANUSFLOW_PIPELINE_CACHE)\n");
      else if (cbytes < 0)
        printf("Pipeline cache: %s (not written yet)\n", cfile);
      else
        printf("Pipeline cache: %s (%" G_GINT64_FORMAT " bytes)\n", cfile, cbytes);
      g_free(cfile);
    }
  }
  int rc = 0;
  if (error) {
    cli_print_error("info: %s", error->message);
    g_error_free(error);
    rc = 1;
  }
  vkrt_context_free(ctx);
  g_free(why);
  g_array_free(devs, TRUE);
  g_free(device);
  return rc;
}
