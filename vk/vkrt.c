/* vkrt: instance, device listing and selection, the context (device, queue, memory type),
 * validation messages, counters and fault injection. Buffers live in vkrt_buffer.c,
 * pipelines and recording in vkrt_seq.c. */
#include "vkrt_internal.h"
#include "jf-config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

G_DEFINE_QUARK(vkrt-error-quark, vkrt_error)

#define VALIDATION_LAYER "VK_LAYER_KHRONOS_validation"

void vkrt_set_vk_error(GError **error, VkResult r, const char *what)
{
  switch (r) {
  case VK_ERROR_OUT_OF_HOST_MEMORY:
  case VK_ERROR_OUT_OF_DEVICE_MEMORY:
  case VK_ERROR_OUT_OF_POOL_MEMORY:
  case VK_ERROR_FRAGMENTED_POOL:
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_OOM, "%s: out of %s memory (VkResult %d)", what,
                r == VK_ERROR_OUT_OF_HOST_MEMORY ? "host" : "device", r);
    break;
  case VK_ERROR_DEVICE_LOST:
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST, "%s: the Vulkan device was lost", what);
    break;
  case VK_ERROR_INITIALIZATION_FAILED:
  case VK_ERROR_INCOMPATIBLE_DRIVER:
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "%s: no usable Vulkan driver (VkResult %d)", what, r);
    break;
  case VK_ERROR_EXTENSION_NOT_PRESENT:
  case VK_ERROR_FEATURE_NOT_PRESENT:
  case VK_ERROR_LAYER_NOT_PRESENT:
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED, "%s: unsupported by the driver (VkResult %d)", what, r);
    break;
  default:
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "%s failed (VkResult %d)", what, r);
  }
}

const char *vkrt_device_type_name(VkrtDeviceType type)
{
  switch (type) {
  case VKRT_DEVICE_INTEGRATED: return "integrated";
  case VKRT_DEVICE_DISCRETE: return "discrete";
  case VKRT_DEVICE_VIRTUAL: return "virtual";
  case VKRT_DEVICE_CPU: return "cpu";
  default: return "other";
  }
}

/* --- environment ----------------------------------------------------------------------------- */

static uint64_t env_u64(const char *name, uint64_t dflt)
{
  const char *s = g_getenv(name);
  if (!s || !*s) return dflt;
  char *end = NULL;
  guint64 v = g_ascii_strtoull(s, &end, 10);
  if (end == s) return dflt;
  /* allow a K/M/G suffix for convenience in JANUSFLOW_MAX_BINDING */
  if (*end == 'k' || *end == 'K') v <<= 10;
  else if (*end == 'm' || *end == 'M') v <<= 20;
  else if (*end == 'g' || *end == 'G') v <<= 30;
  return v;
}

static bool env_flag(const char *name)
{
  const char *s = g_getenv(name);
  return s && *s && strcmp(s, "0") != 0 && g_ascii_strcasecmp(s, "false") != 0;
}

/* --- instance -------------------------------------------------------------------------------- */

static VkBool32 VKAPI_PTR debug_callback(VkDebugUtilsMessageSeverityFlagBitsEXT severity,
                                         VkDebugUtilsMessageTypeFlagsEXT type,
                                         const VkDebugUtilsMessengerCallbackDataEXT *data, void *user)
{
  (void)type;
  VkrtContext *ctx = user;
  if (!(severity & (VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                    VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT)))
    return VK_FALSE;
  if (ctx) g_atomic_int_inc(&ctx->validation_messages);
  fprintf(stderr, "vkrt validation %s: %s\n",
          severity & VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT ? "error" : "warning",
          data && data->pMessage ? data->pMessage : "(no message)");
  return VK_FALSE;
}

static bool has_layer(const char *name)
{
  uint32_t n = 0;
  if (vkEnumerateInstanceLayerProperties(&n, NULL) != VK_SUCCESS) return false;
  VkLayerProperties *props = g_new0(VkLayerProperties, n ? n : 1);
  bool found = false;
  if (vkEnumerateInstanceLayerProperties(&n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].layerName, name) == 0) found = true;
  g_free(props);
  return found;
}

static bool has_instance_ext(const char *layer, const char *name)
{
  uint32_t n = 0;
  if (vkEnumerateInstanceExtensionProperties(layer, &n, NULL) != VK_SUCCESS) return false;
  VkExtensionProperties *props = g_new0(VkExtensionProperties, n ? n : 1);
  bool found = false;
  if (vkEnumerateInstanceExtensionProperties(layer, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].extensionName, name) == 0) found = true;
  g_free(props);
  return found;
}

/* ctx may be NULL (device listing); then validation is never enabled. */
static VkInstance instance_create(VkrtContext *ctx, bool validate, GError **error)
{
  VkApplicationInfo app = {
    .sType = VK_STRUCTURE_TYPE_APPLICATION_INFO,
    .pApplicationName = "janusflow",
    .pEngineName = "janusflow-vkrt",
    .apiVersion = VK_API_VERSION_1_2,
  };
  const char *layers[1];
  const char *exts[2];
  uint32_t n_layers = 0, n_exts = 0;
  VkDebugUtilsMessengerCreateInfoEXT dbg = {
    .sType = VK_STRUCTURE_TYPE_DEBUG_UTILS_MESSENGER_CREATE_INFO_EXT,
    .messageSeverity = VK_DEBUG_UTILS_MESSAGE_SEVERITY_WARNING_BIT_EXT |
                       VK_DEBUG_UTILS_MESSAGE_SEVERITY_ERROR_BIT_EXT,
    .messageType = VK_DEBUG_UTILS_MESSAGE_TYPE_GENERAL_BIT_EXT |
                   VK_DEBUG_UTILS_MESSAGE_TYPE_VALIDATION_BIT_EXT |
                   VK_DEBUG_UTILS_MESSAGE_TYPE_PERFORMANCE_BIT_EXT,
    .pfnUserCallback = debug_callback,
    .pUserData = ctx,
  };
  if (validate) {
    if (!has_layer(VALIDATION_LAYER)) {
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                  "validation was requested (JANUSFLOW_VALIDATE) but %s is not installed", VALIDATION_LAYER);
      return VK_NULL_HANDLE;
    }
    if (!has_instance_ext(NULL, VK_EXT_DEBUG_UTILS_EXTENSION_NAME) &&
        !has_instance_ext(VALIDATION_LAYER, VK_EXT_DEBUG_UTILS_EXTENSION_NAME)) {
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                  "validation was requested but %s is not available", VK_EXT_DEBUG_UTILS_EXTENSION_NAME);
      return VK_NULL_HANDLE;
    }
    layers[n_layers++] = VALIDATION_LAYER;
    exts[n_exts++] = VK_EXT_DEBUG_UTILS_EXTENSION_NAME;
  }
  bool portability = has_instance_ext(NULL, VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME);
  if (portability) exts[n_exts++] = VK_KHR_PORTABILITY_ENUMERATION_EXTENSION_NAME;
  VkInstanceCreateInfo ci = {
    .sType = VK_STRUCTURE_TYPE_INSTANCE_CREATE_INFO,
    .pNext = validate ? &dbg : NULL,
    .flags = portability ? VK_INSTANCE_CREATE_ENUMERATE_PORTABILITY_BIT_KHR : 0,
    .pApplicationInfo = &app,
    .enabledLayerCount = n_layers,
    .ppEnabledLayerNames = layers,
    .enabledExtensionCount = n_exts,
    .ppEnabledExtensionNames = exts,
  };
  VkInstance inst = VK_NULL_HANDLE;
  VkResult r = vkCreateInstance(&ci, NULL, &inst);
  if (r != VK_SUCCESS) {
    GError *e = NULL;
    vkrt_set_vk_error(&e, r, "vkCreateInstance");
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "cannot create a Vulkan instance: %s", e->message);
    g_error_free(e);
    return VK_NULL_HANDLE;
  }
  if (validate && ctx) {
    PFN_vkCreateDebugUtilsMessengerEXT create =
      (PFN_vkCreateDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkCreateDebugUtilsMessengerEXT");
    ctx->destroy_messenger =
      (PFN_vkDestroyDebugUtilsMessengerEXT)vkGetInstanceProcAddr(inst, "vkDestroyDebugUtilsMessengerEXT");
    if (!create || !ctx->destroy_messenger || create(inst, &dbg, NULL, &ctx->messenger) != VK_SUCCESS) {
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED, "cannot create the validation messenger");
      vkDestroyInstance(inst, NULL);
      return VK_NULL_HANDLE;
    }
  }
  return inst;
}

/* --- devices --------------------------------------------------------------------------------- */

static bool has_device_ext(VkPhysicalDevice phys, const char *name)
{
  uint32_t n = 0;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, NULL) != VK_SUCCESS) return false;
  VkExtensionProperties *props = g_new0(VkExtensionProperties, n ? n : 1);
  bool found = false;
  if (vkEnumerateDeviceExtensionProperties(phys, NULL, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++)
      if (strcmp(props[i].extensionName, name) == 0) found = true;
  g_free(props);
  return found;
}

static int compute_queue_family(VkPhysicalDevice phys, uint32_t *valid_bits)
{
  uint32_t n = 0;
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, NULL);
  VkQueueFamilyProperties *q = g_new0(VkQueueFamilyProperties, n ? n : 1);
  vkGetPhysicalDeviceQueueFamilyProperties(phys, &n, q);
  int best = -1;
  /* prefer a compute-only family (async compute on GPUs), else any with compute */
  for (uint32_t i = 0; i < n; i++) {
    if (!(q[i].queueFlags & VK_QUEUE_COMPUTE_BIT)) continue;
    if (best < 0 || !(q[i].queueFlags & VK_QUEUE_GRAPHICS_BIT)) best = (int)i;
  }
  if (valid_bits) *valid_bits = best >= 0 ? q[best].timestampValidBits : 0;
  g_free(q);
  return best;
}

/* Debian 12's Vulkan headers (1.3.239) predate VK_KHR_cooperative_matrix (1.3.255). */
#ifndef VK_KHR_cooperative_matrix
#define VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR ((VkStructureType)1000506000)
#define VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR ((VkStructureType)1000506001)
typedef struct VkCooperativeMatrixPropertiesKHR {
  VkStructureType sType;
  void *pNext;
  uint32_t MSize, NSize, KSize;
  VkComponentTypeNV AType, BType, CType, ResultType; /* VkComponentTypeKHR: same values */
  VkBool32 saturatingAccumulation;
  VkScopeNV scope;                                   /* VkScopeKHR: same values */
} VkCooperativeMatrixPropertiesKHR;
typedef struct VkPhysicalDeviceCooperativeMatrixFeaturesKHR {
  VkStructureType sType;
  void *pNext;
  VkBool32 cooperativeMatrix, cooperativeMatrixRobustBufferAccess;
} VkPhysicalDeviceCooperativeMatrixFeaturesKHR;
typedef VkResult (VKAPI_PTR *PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)(
  VkPhysicalDevice, uint32_t *, VkCooperativeMatrixPropertiesKHR *);
#endif
#define COOPMAT_KHR_EXT "VK_KHR_cooperative_matrix"

bool vkrt_coopmat_khr_built(void)
{
  return VKRT_HAVE_COOPMAT_KHR;
}

/* The shape rule both probes apply: fp16 x fp16 -> fp32 at subgroup scope, tiling the kernel's
 * 32 x 32 x 32 block of one subgroup, k a multiple of 8; the largest such shape wins. */
static void coopmat_consider(VkrtDeviceInfo *info, uint64_t *best, uint32_t m, uint32_t n, uint32_t k, int a,
                             int b, int c, int d, int scope)
{
  if (a != VK_COMPONENT_TYPE_FLOAT16_NV || b != VK_COMPONENT_TYPE_FLOAT16_NV || c != VK_COMPONENT_TYPE_FLOAT32_NV ||
      d != VK_COMPONENT_TYPE_FLOAT32_NV || scope != VK_SCOPE_SUBGROUP_NV)
    return;
  if (!m || !n || !k || 32 % m || 32 % n || 32 % k || k % 8) return;
  uint64_t vol = (uint64_t)m * n * k;
  if (vol > *best) {
    *best = vol;
    info->coopmat_m = m;
    info->coopmat_n = n;
    info->coopmat_k = k;
  }
}

/* Whether the device has every feature matmul_coop.comp needs: the extension's
 * cooperativeMatrix (feature struct `stype`, NV or KHR: both begin sType, pNext,
 * cooperativeMatrix), shaderFloat16, and the memory model with device scope (device_create). */
static bool coopmat_features(VkPhysicalDevice phys, VkStructureType stype)
{
  VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES };
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR cf = { .sType = stype, .pNext = &vmm };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = &cf };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = &f16 };
  vkGetPhysicalDeviceFeatures2(phys, &f2);
  return cf.cooperativeMatrix && f16.shaderFloat16 && vmm.vulkanMemoryModel && vmm.vulkanMemoryModelDeviceScope;
}

/* The best fp16 x fp16 -> fp32 subgroup shape of VK_NV_cooperative_matrix that tiles the
 * 32 x 32 x 32 block of one subgroup in shaders/matmul_coop.comp, when the features the shader
 * needs are there too (the memory model with device scope: see device_create), and when
 * coopmat_khr_probe (run first) found no KHR shape: the KHR kernel is the one that has run (on
 * Mesa's lavapipe). Never run on hardware (no device with the NV extension was available). */
static void coopmat_nv_probe(VkInstance inst, VkPhysicalDevice phys, bool v12, VkrtDeviceInfo *info)
{
  if (!inst || !v12 || !has_device_ext(phys, VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME)) return;
  info->has_coopmat_nv = true;
  if (info->coopmat_m) return;
  if (!coopmat_features(phys, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV)) return;
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesNV)
    vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesNV");
  uint32_t n = 0;
  if (!get || get(phys, &n, NULL) != VK_SUCCESS || n == 0) return;
  VkCooperativeMatrixPropertiesNV *props = g_new0(VkCooperativeMatrixPropertiesNV, n);
  for (uint32_t i = 0; i < n; i++) props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_NV;
  uint64_t best = 0;
  if (get(phys, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++) {
      const VkCooperativeMatrixPropertiesNV *c = &props[i];
      coopmat_consider(info, &best, c->MSize, c->NSize, c->KSize, c->AType, c->BType, c->CType, c->DType, c->scope);
    }
  g_free(props);
}

/* As coopmat_nv_probe for VK_KHR_cooperative_matrix, when this build has the KHR kernel. */
static void coopmat_khr_probe(VkInstance inst, VkPhysicalDevice phys, bool v12, VkrtDeviceInfo *info)
{
  if (!inst || !v12 || !has_device_ext(phys, COOPMAT_KHR_EXT)) return;
  info->has_coopmat_khr = true;
  if (!vkrt_coopmat_khr_built()) return;
  if (!coopmat_features(phys, VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR)) return;
  PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR get = (PFN_vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR)
    vkGetInstanceProcAddr(inst, "vkGetPhysicalDeviceCooperativeMatrixPropertiesKHR");
  uint32_t n = 0;
  if (!get || get(phys, &n, NULL) != VK_SUCCESS || n == 0) return;
  VkCooperativeMatrixPropertiesKHR *props = g_new0(VkCooperativeMatrixPropertiesKHR, n);
  for (uint32_t i = 0; i < n; i++) props[i].sType = VK_STRUCTURE_TYPE_COOPERATIVE_MATRIX_PROPERTIES_KHR;
  uint64_t best = 0;
  if (get(phys, &n, props) == VK_SUCCESS)
    for (uint32_t i = 0; i < n; i++) {
      const VkCooperativeMatrixPropertiesKHR *c = &props[i];
      if (!c->saturatingAccumulation)
        coopmat_consider(info, &best, c->MSize, c->NSize, c->KSize, c->AType, c->BType, c->CType, c->ResultType,
                         c->scope);
    }
  g_free(props);
  info->coopmat_khr = best != 0;
}

static void device_info_fill(VkInstance inst, VkPhysicalDevice phys, uint32_t index, VkrtDeviceInfo *info,
                             uint64_t *max_buffer_size)
{
  memset(info, 0, sizeof *info);
  VkPhysicalDeviceProperties props;
  vkGetPhysicalDeviceProperties(phys, &props);
  bool v12 = props.apiVersion >= VK_API_VERSION_1_2;
  bool v13 = props.apiVersion >= VK_API_VERSION_1_3;

  VkPhysicalDeviceDriverProperties drv = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_DRIVER_PROPERTIES };
  VkPhysicalDeviceSubgroupProperties sg = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SUBGROUP_PROPERTIES };
  VkPhysicalDeviceMaintenance3Properties m3 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_3_PROPERTIES };
  VkPhysicalDeviceMaintenance4Properties m4 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_MAINTENANCE_4_PROPERTIES };
  VkPhysicalDeviceProperties2 p2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_PROPERTIES_2 };
  p2.pNext = &sg;
  sg.pNext = &m3;
  if (v12) m3.pNext = &drv;
  if (v13) drv.pNext = &m4;
  vkGetPhysicalDeviceProperties2(phys, &p2);

  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES };
  VkPhysicalDeviceFeatures2 f2 = { .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_FEATURES_2, .pNext = v12 ? &f16 : NULL };
  vkGetPhysicalDeviceFeatures2(phys, &f2);

  info->index = index;
  g_strlcpy(info->name, props.deviceName, sizeof info->name);
  if (v12)
    g_snprintf(info->driver, sizeof info->driver, "%s %s", drv.driverName, drv.driverInfo);
  else
    g_snprintf(info->driver, sizeof info->driver, "driver version 0x%x", props.driverVersion);
  switch (props.deviceType) {
  case VK_PHYSICAL_DEVICE_TYPE_INTEGRATED_GPU: info->type = VKRT_DEVICE_INTEGRATED; break;
  case VK_PHYSICAL_DEVICE_TYPE_DISCRETE_GPU: info->type = VKRT_DEVICE_DISCRETE; break;
  case VK_PHYSICAL_DEVICE_TYPE_VIRTUAL_GPU: info->type = VKRT_DEVICE_VIRTUAL; break;
  case VK_PHYSICAL_DEVICE_TYPE_CPU: info->type = VKRT_DEVICE_CPU; break;
  default: info->type = VKRT_DEVICE_OTHER;
  }
  info->vendor_id = props.vendorID;
  info->device_id = props.deviceID;
  info->driver_version = props.driverVersion;
  memcpy(info->pipeline_cache_uuid, props.pipelineCacheUUID, sizeof info->pipeline_cache_uuid);
  info->api_version = props.apiVersion;

  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(phys, &mem);
  for (uint32_t i = 0; i < mem.memoryHeapCount; i++)
    if ((mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) &&
        mem.memoryHeaps[i].size > info->device_local_bytes)
      info->device_local_bytes = mem.memoryHeaps[i].size;

  info->max_storage_range = props.limits.maxStorageBufferRange;
  info->max_alloc = m3.maxMemoryAllocationSize;
  info->min_storage_align = props.limits.minStorageBufferOffsetAlignment;
  info->min_texel_align = props.limits.minTexelBufferOffsetAlignment;
  info->max_texel_range = (uint64_t)props.limits.maxTexelBufferElements * 16;
  if (info->max_texel_range > info->max_alloc) info->max_texel_range = info->max_alloc;
  info->max_wg_invocations = props.limits.maxComputeWorkGroupInvocations;
  info->max_shared_bytes = props.limits.maxComputeSharedMemorySize;
  info->subgroup_size = sg.subgroupSize;
  info->has_subgroup_arith = (sg.supportedStages & VK_SHADER_STAGE_COMPUTE_BIT) &&
                             (sg.supportedOperations & VK_SUBGROUP_FEATURE_ARITHMETIC_BIT);
  info->timestamp_period_ns = props.limits.timestampPeriod;
  uint32_t valid_bits = 0;
  int qf = compute_queue_family(phys, &valid_bits);
  info->has_timestamps = qf >= 0 && valid_bits > 0 && props.limits.timestampPeriod > 0;
  info->has_push_descriptor = has_device_ext(phys, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
  info->has_fp16 = v12 && f16.shaderFloat16;
  info->has_int8 = v12 && f16.shaderInt8;
  info->has_coopmat = has_device_ext(phys, COOPMAT_KHR_EXT) ||
                      has_device_ext(phys, "VK_NV_cooperative_matrix");
  info->usable = v12 && qf >= 0;
  coopmat_khr_probe(inst, phys, v12, info);
  coopmat_nv_probe(inst, phys, v12, info);
  if (max_buffer_size) *max_buffer_size = v13 ? m4.maxBufferSize : info->max_alloc;

  /* JANUSFLOW_MAX_BINDING lowers the binding limits so windowing is exercised with small
   * tensors; it is kept a multiple of both alignments so windows stay aligned. */
  uint64_t cap = env_u64("JANUSFLOW_MAX_BINDING", 0);
  if (cap) {
    uint64_t a = MAX(MAX(info->min_storage_align, info->min_texel_align), 16);
    cap = MAX(cap / a * a, a);
    if (cap < info->max_storage_range) info->max_storage_range = cap;
    if (cap < info->max_texel_range) info->max_texel_range = cap;
  }
  /* JANUSFLOW_DEVICE_HEAP stands in for a GPU with less memory (tests of what the loader and
   * the GUI say when a model does not fit): the heap size the fit checks see, never raised. */
  uint64_t heap = env_u64("JANUSFLOW_DEVICE_HEAP", 0);
  if (heap && heap < info->device_local_bytes)
    info->device_local_bytes = heap;
}

static GArray *list_devices(VkInstance inst, GPtrArray *physs, GError **error)
{
  uint32_t n = 0;
  VkResult r = vkEnumeratePhysicalDevices(inst, &n, NULL);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkEnumeratePhysicalDevices");
    return NULL;
  }
  VkPhysicalDevice *devs = g_new0(VkPhysicalDevice, n ? n : 1);
  r = vkEnumeratePhysicalDevices(inst, &n, devs);
  if (r != VK_SUCCESS && r != VK_INCOMPLETE) {
    g_free(devs);
    vkrt_set_vk_error(error, r, "vkEnumeratePhysicalDevices");
    return NULL;
  }
  GArray *arr = g_array_new(FALSE, TRUE, sizeof(VkrtDeviceInfo));
  for (uint32_t i = 0; i < n; i++) {
    VkrtDeviceInfo info;
    device_info_fill(inst, devs[i], i, &info, NULL);
    g_array_append_val(arr, info);
    if (physs) g_ptr_array_add(physs, devs[i]);
  }
  g_free(devs);
  return arr;
}

GArray *vkrt_list_devices(GError **error)
{
  VkInstance inst = instance_create(NULL, false, error);
  if (!inst) return NULL;
  GArray *arr = list_devices(inst, NULL, error);
  vkDestroyInstance(inst, NULL);
  return arr;
}

static int type_rank(VkrtDeviceType t)
{
  switch (t) {
  case VKRT_DEVICE_DISCRETE: return 4;
  case VKRT_DEVICE_INTEGRATED: return 3;
  case VKRT_DEVICE_VIRTUAL: return 2;
  case VKRT_DEVICE_CPU: return 1;
  default: return 0;
  }
}

static char *describe_devices(const GArray *devices)
{
  GString *s = g_string_new(NULL);
  for (guint i = 0; i < devices->len; i++) {
    const VkrtDeviceInfo *d = &g_array_index(devices, VkrtDeviceInfo, i);
    g_string_append_printf(s, "%s%u: %s (%s%s)", i ? "; " : "", d->index, d->name,
                           vkrt_device_type_name(d->type), d->usable ? "" : ", unusable");
  }
  if (!devices->len) g_string_append(s, "none");
  return g_string_free(s, FALSE);
}

int vkrt_select_device(const GArray *devices, const char *selector, char **why, GError **error)
{
  if (why) *why = NULL;
  if (!devices || devices->len == 0) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "no Vulkan device found (is a Vulkan driver installed?)");
    return -1;
  }
  int pick = -1;
  if (!selector || !*selector) {
    for (guint i = 0; i < devices->len; i++) {
      const VkrtDeviceInfo *d = &g_array_index(devices, VkrtDeviceInfo, i);
      if (!d->usable) continue;
      if (pick < 0) { pick = (int)i; continue; }
      const VkrtDeviceInfo *b = &g_array_index(devices, VkrtDeviceInfo, pick);
      if (type_rank(d->type) > type_rank(b->type) ||
          (type_rank(d->type) == type_rank(b->type) && d->device_local_bytes > b->device_local_bytes))
        pick = (int)i;
    }
    if (pick >= 0 && why)
      *why = g_strdup_printf("best device type (%s; preference discrete > integrated > virtual > cpu)",
                             vkrt_device_type_name(g_array_index(devices, VkrtDeviceInfo, pick).type));
  } else {
    bool numeric = true;
    for (const char *p = selector; *p; p++)
      if (!g_ascii_isdigit(*p)) numeric = false;
    if (numeric) {
      guint64 idx = g_ascii_strtoull(selector, NULL, 10);
      for (guint i = 0; i < devices->len; i++)
        if (g_array_index(devices, VkrtDeviceInfo, i).index == idx) pick = (int)i;
      if (pick >= 0 && why) *why = g_strdup_printf("selected by index '%s'", selector);
    } else {
      char *needle = g_utf8_casefold(selector, -1);
      for (guint i = 0; i < devices->len && pick < 0; i++) {
        char *hay = g_utf8_casefold(g_array_index(devices, VkrtDeviceInfo, i).name, -1);
        if (strstr(hay, needle)) pick = (int)i;
        g_free(hay);
      }
      g_free(needle);
      if (pick >= 0 && why) *why = g_strdup_printf("selected by name '%s'", selector);
    }
  }
  if (pick < 0 || !g_array_index(devices, VkrtDeviceInfo, pick).usable) {
    char *list = describe_devices(devices);
    if (pick >= 0)
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE,
                  "Vulkan device '%s' cannot run the engine (needs Vulkan 1.2 and a compute queue); devices: %s",
                  selector, list);
    else if (selector && *selector)
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "no Vulkan device matches '%s'; devices: %s",
                  selector, list);
    else
      g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "no usable Vulkan device; devices: %s", list);
    g_free(list);
    if (why) g_clear_pointer(why, g_free);
    return -1;
  }
  return pick;
}

/* --- context --------------------------------------------------------------------------------- */

static bool pick_memory(VkrtContext *ctx, GError **error)
{
  VkPhysicalDeviceMemoryProperties mem;
  vkGetPhysicalDeviceMemoryProperties(ctx->phys, &mem);
  const VkMemoryPropertyFlags hv = VK_MEMORY_PROPERTY_HOST_VISIBLE_BIT | VK_MEMORY_PROPERTY_HOST_COHERENT_BIT;
  int dl = -1, dl_hv = -1, staging = -1;
  VkDeviceSize big = 0;
  for (uint32_t i = 0; i < mem.memoryHeapCount; i++)
    if (mem.memoryHeaps[i].flags & VK_MEMORY_HEAP_DEVICE_LOCAL_BIT) big = MAX(big, mem.memoryHeaps[i].size);
  for (uint32_t i = 0; i < mem.memoryTypeCount; i++) {
    VkMemoryPropertyFlags f = mem.memoryTypes[i].propertyFlags;
    VkDeviceSize heap = mem.memoryHeaps[mem.memoryTypes[i].heapIndex].size;
    if (f & (VK_MEMORY_PROPERTY_PROTECTED_BIT | VK_MEMORY_PROPERTY_LAZILY_ALLOCATED_BIT)) continue;
    if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && dl < 0 && heap == big) dl = (int)i;
    /* host-visible device-local memory only counts when it is the big heap (UMA, ReBAR, CPU),
     * not the 256 MiB BAR window of a discrete GPU */
    if ((f & VK_MEMORY_PROPERTY_DEVICE_LOCAL_BIT) && (f & hv) == hv && dl_hv < 0 && heap == big) dl_hv = (int)i;
    if ((f & hv) == hv && (staging < 0 || (f & VK_MEMORY_PROPERTY_HOST_CACHED_BIT))) {
      if (staging < 0 || !(mem.memoryTypes[staging].propertyFlags & VK_MEMORY_PROPERTY_HOST_CACHED_BIT))
        staging = (int)i;
    }
  }
  const char *hm = g_getenv("JANUSFLOW_HOST_MAPPED");
  if (hm && !strcmp(hm, "0") && dl >= 0 && staging >= 0)
    dl_hv = -1;  /* tests: the staging path of discrete GPUs without ReBAR */
  if (dl_hv >= 0) {
    ctx->mem_type = (uint32_t)dl_hv;
    ctx->mapped = true;
  } else if (dl >= 0 && staging >= 0) {
    ctx->mem_type = (uint32_t)dl;
    ctx->mapped = false;
    ctx->staging_type = (uint32_t)staging;
  } else if (staging >= 0) {
    ctx->mem_type = (uint32_t)staging;
    ctx->mapped = true;
  } else {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED, "%s has no usable memory type", ctx->info.name);
    return false;
  }
  return true;
}

static bool device_create(VkrtContext *ctx, GError **error)
{
  int qf = compute_queue_family(ctx->phys, &ctx->timestamp_valid_bits);
  if (qf < 0) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_NO_DEVICE, "%s has no compute queue", ctx->info.name);
    return false;
  }
  ctx->queue_family = (uint32_t)qf;
  if (!ctx->info.has_push_descriptor) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                "%s lacks %s, which the engine requires", ctx->info.name, VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME);
    return false;
  }
  float prio = 1.0f;
  VkDeviceQueueCreateInfo qci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_QUEUE_CREATE_INFO,
    .queueFamilyIndex = ctx->queue_family,
    .queueCount = 1,
    .pQueuePriorities = &prio,
  };
  bool khr = ctx->info.coopmat_khr;
  const char *coop_ext = khr ? COOPMAT_KHR_EXT : VK_NV_COOPERATIVE_MATRIX_EXTENSION_NAME;
  const char *exts[] = { VK_KHR_PUSH_DESCRIPTOR_EXTENSION_NAME, coop_ext };
  /* cooperative matrices: only what matmul_coop.comp needs, and only where a probe found all
   * of it; if the driver still refuses, the device is made again without them */
  VkPhysicalDeviceVulkanMemoryModelFeatures vmm = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_VULKAN_MEMORY_MODEL_FEATURES, .vulkanMemoryModel = VK_TRUE,
    /* with the memory model on, every shader's Device-scope atomics (glslang's default scope:
     * the shared-memory atomicMax of matmul_coop and the GEMM kernels) need this too; the
     * validation layer of Vulkan 1.4 reports them otherwise (found on Mesa 26's lavapipe) */
    .vulkanMemoryModelDeviceScope = VK_TRUE };
  VkPhysicalDeviceCooperativeMatrixFeaturesNV cf = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_NV, .pNext = &vmm,
    .cooperativeMatrix = VK_TRUE };
  VkPhysicalDeviceCooperativeMatrixFeaturesKHR cfk = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_COOPERATIVE_MATRIX_FEATURES_KHR, .pNext = &vmm,
    .cooperativeMatrix = VK_TRUE };
  VkPhysicalDeviceShaderFloat16Int8Features f16 = {
    .sType = VK_STRUCTURE_TYPE_PHYSICAL_DEVICE_SHADER_FLOAT16_INT8_FEATURES, .pNext = khr ? (void *)&cfk : (void *)&cf,
    .shaderFloat16 = VK_TRUE };
  bool coop = ctx->info.coopmat_m != 0;
  VkDeviceCreateInfo dci = {
    .sType = VK_STRUCTURE_TYPE_DEVICE_CREATE_INFO,
    .pNext = coop ? &f16 : NULL,
    .queueCreateInfoCount = 1,
    .pQueueCreateInfos = &qci,
    .enabledExtensionCount = coop ? 2 : 1,
    .ppEnabledExtensionNames = exts,
  };
  VkResult r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->device);
  if (r != VK_SUCCESS && coop) {
    char *note = g_strdup_printf("vkCreateDevice with %s failed (VkResult %d)", coop_ext, r);
    vkrt_context_set_coopmat_state(ctx, -1, note);
    g_free(note);
    dci.pNext = NULL;
    dci.enabledExtensionCount = 1;
    r = vkCreateDevice(ctx->phys, &dci, NULL, &ctx->device);
  }
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateDevice");
    return false;
  }
  vkGetDeviceQueue(ctx->device, ctx->queue_family, 0, &ctx->queue);
  ctx->push_descriptor_set =
    (PFN_vkCmdPushDescriptorSetKHR)vkGetDeviceProcAddr(ctx->device, "vkCmdPushDescriptorSetKHR");
  if (!ctx->push_descriptor_set) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_UNSUPPORTED, "vkCmdPushDescriptorSetKHR is missing");
    return false;
  }
  VkCommandPoolCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = ctx->queue_family,
  };
  if ((r = vkCreateCommandPool(ctx->device, &pci, NULL, &ctx->xfer_pool)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateCommandPool");
    return false;
  }
  VkCommandBufferAllocateInfo cai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = ctx->xfer_pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if ((r = vkAllocateCommandBuffers(ctx->device, &cai, &ctx->xfer_cmd)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkAllocateCommandBuffers");
    return false;
  }
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if ((r = vkCreateFence(ctx->device, &fci, NULL, &ctx->xfer_fence)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateFence");
    return false;
  }
  return pick_memory(ctx, error);
}

static void pipeline_free(gpointer p)
{
  (void)p; /* destroyed in vkrt_context_free, which has the device */
}

VkrtContext *vkrt_context_new(const VkrtOptions *opt, GError **error)
{
  VkrtContext *ctx = g_new0(VkrtContext, 1);
  g_mutex_init(&ctx->lock);
  ctx->pipelines = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, pipeline_free);
  vkrt_profile_init(ctx, env_flag("JANUSFLOW_PROFILE"));
  ctx->barrier_all = g_strcmp0(g_getenv("JANUSFLOW_BARRIERS"), "all") == 0;
  bool validate = (opt && opt->validate) || env_flag("JANUSFLOW_VALIDATE");
  const char *sel = opt && opt->device ? opt->device : g_getenv("JANUSFLOW_DEVICE");

  ctx->instance = instance_create(ctx, validate, error);
  if (!ctx->instance) goto fail;
  GPtrArray *physs = g_ptr_array_new();
  GArray *devs = list_devices(ctx->instance, physs, error);
  if (!devs) {
    g_ptr_array_free(physs, TRUE);
    goto fail;
  }
  int pick = vkrt_select_device(devs, sel, NULL, error);
  if (pick >= 0) {
    ctx->phys = g_ptr_array_index(physs, pick);
    device_info_fill(ctx->instance, ctx->phys, g_array_index(devs, VkrtDeviceInfo, pick).index, &ctx->info, &ctx->max_buffer_size);
  }
  g_array_free(devs, TRUE);
  g_ptr_array_free(physs, TRUE);
  if (pick < 0) goto fail;
  ctx->min_texel_align = ctx->info.min_texel_align;
  {
    VkPhysicalDeviceProperties props;
    vkGetPhysicalDeviceProperties(ctx->phys, &props);
    ctx->max_texel_bytes = MIN((uint64_t)props.limits.maxTexelBufferElements * 16, ctx->info.max_alloc);
    for (int i = 0; i < 3; i++) ctx->max_groups[i] = props.limits.maxComputeWorkGroupCount[i];
  }
  if (ctx->info.coopmat_m == 0)
    vkrt_context_set_coopmat_state(ctx, -1, !ctx->info.has_coopmat ? "the device has no cooperative matrices"
                                   : ctx->info.has_coopmat_khr && !vkrt_coopmat_khr_built() && !ctx->info.has_coopmat_nv
                                   ? "only VK_KHR_cooperative_matrix, and this build has no KHR kernel (its glslc lacked "
                                     "GL_KHR_cooperative_matrix)"
                                   : "no fp16 x fp16 -> fp32 subgroup shape (or a needed feature) in the device's "
                                     "cooperative-matrix extension");
  if (!device_create(ctx, error)) goto fail;
  vkrt_cache_open(ctx, opt ? opt->pipeline_cache_dir : NULL);
  ctx->fail_alloc_in = (uint32_t)env_u64("JANUSFLOW_FAIL_ALLOC", 0);
  ctx->fail_submit_in = (uint32_t)env_u64("JANUSFLOW_FAIL_SUBMIT", 0);
  return ctx;
fail:
  vkrt_context_free(ctx);
  return NULL;
}

void vkrt_context_free(VkrtContext *ctx)
{
  if (!ctx) return;
  vkrt_profile_finish(ctx);
  if (ctx->device) {
    vkDeviceWaitIdle(ctx->device);
    vkrt_cache_close(ctx);
    GHashTableIter it;
    gpointer key, val;
    g_hash_table_iter_init(&it, ctx->pipelines);
    while (g_hash_table_iter_next(&it, &key, &val)) {
      VkrtPipeline *p = val;
      if (p->pipeline) vkDestroyPipeline(ctx->device, p->pipeline, NULL);
      if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
      if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
      if (p->module) vkDestroyShaderModule(ctx->device, p->module, NULL);
      g_free(p);
    }
    vkrt_context_free_staging(ctx);
    if (ctx->xfer_fence) vkDestroyFence(ctx->device, ctx->xfer_fence, NULL);
    if (ctx->xfer_pool) vkDestroyCommandPool(ctx->device, ctx->xfer_pool, NULL);
    vkDestroyDevice(ctx->device, NULL);
  }
  g_hash_table_destroy(ctx->pipelines);
  g_free(ctx->cache_path);
  g_free(ctx->coopmat_note);
  if (ctx->messenger) ctx->destroy_messenger(ctx->instance, ctx->messenger, NULL);
  if (ctx->instance) vkDestroyInstance(ctx->instance, NULL);
  g_mutex_clear(&ctx->lock);
  g_free(ctx);
}

const VkrtDeviceInfo *vkrt_context_info(const VkrtContext *ctx) { return &ctx->info; }

uint32_t vkrt_context_validation_messages(const VkrtContext *ctx)
{
  return (uint32_t)g_atomic_int_get(&ctx->validation_messages);
}

uint64_t vkrt_context_allocated(const VkrtContext *ctx) { return ctx->allocated; }
bool vkrt_context_host_mapped(const VkrtContext *ctx) { return ctx->mapped; }
uint64_t vkrt_context_flops(const VkrtContext *ctx) { return ctx->flops; }
uint64_t vkrt_context_recorded_flops(const VkrtContext *ctx) { return ctx->recorded_flops; }
void vkrt_context_reset_flops(VkrtContext *ctx) { ctx->flops = 0; }
uint64_t vkrt_context_submits(const VkrtContext *ctx) { return ctx->submits; }
uint64_t vkrt_context_recorded_dispatches(const VkrtContext *ctx) { return ctx->recorded_dispatches; }
void vkrt_context_set_record_only(VkrtContext *ctx, bool on) { ctx->record_only = on; }
bool vkrt_context_record_only(const VkrtContext *ctx) { return ctx->record_only; }

uint64_t vkrt_context_pipelines_created(const VkrtContext *ctx)
{
  g_mutex_lock((GMutex *)&ctx->lock);
  uint64_t n = ctx->pipelines_created;
  g_mutex_unlock((GMutex *)&ctx->lock);
  return n;
}

double vkrt_context_pipeline_ms(const VkrtContext *ctx)
{
  g_mutex_lock((GMutex *)&ctx->lock);
  double ms = ctx->pipeline_ms;
  g_mutex_unlock((GMutex *)&ctx->lock);
  return ms;
}

int vkrt_context_coopmat_state(VkrtContext *ctx, const char **note)
{
  g_mutex_lock(&ctx->lock);
  int s = ctx->coopmat_state;
  if (note) *note = ctx->coopmat_note ? ctx->coopmat_note : "";
  g_mutex_unlock(&ctx->lock);
  return s;
}

void vkrt_context_set_coopmat_state(VkrtContext *ctx, int state, const char *note)
{
  g_mutex_lock(&ctx->lock);
  /* the state leaves 0 once and is final then, so a note handed out stays valid */
  if (ctx->coopmat_state == 0 && state != 0) {
    ctx->coopmat_state = state;
    ctx->coopmat_note = g_strdup(note ? note : "");
  }
  g_mutex_unlock(&ctx->lock);
}

void vkrt_context_fail_alloc_after(VkrtContext *ctx, uint32_t n) { ctx->fail_alloc_in = n; }
void vkrt_context_fail_submit_after(VkrtContext *ctx, uint32_t n) { ctx->fail_submit_in = n; }

uint64_t vkrt_max_binding(const VkrtContext *ctx, bool texel)
{
  return texel ? ctx->info.max_texel_range : ctx->info.max_storage_range;
}

uint64_t vkrt_binding_align(const VkrtContext *ctx, bool texel)
{
  /* texel views are RGBA32: keep offsets on whole texels as well */
  return texel ? MAX(ctx->info.min_texel_align, 16) : MAX(ctx->info.min_storage_align, 4);
}

VkrtTensor vkrt_tensor_aligned(const VkrtContext *ctx, VkrtTensor t, bool texel, uint64_t *skip)
{
  uint64_t a = vkrt_binding_align(ctx, texel);
  uint64_t off = t.offset / a * a;
  if (skip) *skip = t.offset - off;
  VkrtTensor r = { t.buf, off, t.size + (t.offset - off) };
  return r;
}

void vkrt_groups_linear(uint64_t n, uint32_t groups[3])
{
  if (n == 0) n = 1;
  uint64_t y = (n + 65534) / 65535;
  uint64_t x = (n + y - 1) / y;
  groups[0] = (uint32_t)x;
  groups[1] = (uint32_t)y;
  groups[2] = 1;
}
