/* Private state of the Vulkan runtime, shared by vkrt.c (instance, devices, context),
 * vkrt_buffer.c (memory) and vkrt_seq.c (pipelines, recording, submission). */
#pragma once

#include <vulkan/vulkan.h>
#include "vkrt.h"

typedef struct {
  VkShaderModule module;
  VkDescriptorSetLayout set_layout;
  VkPipelineLayout layout;
  VkPipeline pipeline;
  uint32_t written;  /* bindings the shader may write (vkrt_spirv_written_bindings) */
} VkrtPipeline;

struct VkrtContext {
  VkInstance instance;
  VkDebugUtilsMessengerEXT messenger;
  PFN_vkDestroyDebugUtilsMessengerEXT destroy_messenger;
  VkPhysicalDevice phys;
  VkDevice device;
  VkQueue queue;
  uint32_t queue_family;
  VkrtDeviceInfo info;
  uint64_t min_texel_align;
  uint64_t max_texel_bytes;         /* maxTexelBufferElements * 16 (RGBA32 views), real limit */
  uint64_t max_buffer_size;
  uint32_t timestamp_valid_bits;
  uint32_t max_groups[3];           /* maxComputeWorkGroupCount */

  /* Memory: `mem_type` is what buffers are made of; `mapped` says whether it is host visible
   * (then read/write go through a persistent mapping), else `staging_type` is used for copies. */
  uint32_t mem_type;
  bool mapped;
  uint32_t staging_type;
  VkCommandPool xfer_pool;          /* one-shot transfers (staging copies, fills) */
  VkCommandBuffer xfer_cmd;
  VkFence xfer_fence;
  VkBuffer staging;                 /* lazily made when !mapped */
  VkDeviceMemory staging_mem;
  uint8_t *staging_map;
  uint64_t staging_size;

  PFN_vkCmdPushDescriptorSetKHR push_descriptor_set;

  GMutex lock;                      /* pipelines, counters, queue */
  GHashTable *pipelines;            /* key string -> VkrtPipeline* */
  VkPipelineCache cache;            /* VK_NULL_HANDLE if the driver refused one (still works) */
  char *cache_path;                 /* NULL: the cache is not read or written */
  uint64_t cache_loaded;            /* bytes of valid data it was created with */
  uint64_t pipelines_created;       /* under lock */
  uint64_t pipelines_unsaved;       /* built since the file was read or written; under lock */
  double pipeline_ms;               /* host time in pipeline_build; under lock */
  bool record_only;                 /* vkrt_context_set_record_only */

  /* Counters; validation_* is written from the messenger callback (any thread). */
  volatile gint validation_messages;
  gint validation_reported;         /* messages already turned into a VKRT_ERROR_VALIDATION */
  uint64_t allocated;
  uint64_t flops;                   /* submitted work (vkrt_context_flops) */
  uint64_t recorded_flops;          /* vkrt_context_recorded_flops, under lock */
  uint64_t submits;                 /* queue submits (vkrt_context_submits), under lock */
  uint64_t recorded_dispatches;     /* vkrt_context_recorded_dispatches, under lock */
  uint32_t fail_alloc_in;           /* 0 = off, 1 = the next allocation fails, ... */
  uint32_t fail_submit_in;
  bool lost;                        /* sticky: a submit saw VK_ERROR_DEVICE_LOST */
  int coopmat_state;                /* vkrt_context_coopmat_state; under lock */
  char *coopmat_note;
  GHashTable *profile;              /* JANUSFLOW_PROFILE: shader -> GPU time (vkrt_profile.c); else NULL */
  bool barrier_all;                 /* JANUSFLOW_BARRIERS=all: a barrier after every command */
};

struct VkrtBuffer {
  VkrtContext *ctx;
  VkBuffer buffer;
  VkDeviceMemory memory;
  uint64_t size;                    /* as requested */
  uint64_t alloc_size;              /* rounded up so RGBA32 views may cover the tail */
  uint8_t *map;                     /* persistent mapping, or NULL (staging path) */
  GHashTable *views;                /* offset -> VkBufferView, freed with the buffer */
};

/* Converts a VkResult into a GError in VKRT_ERROR (OOM / DEVICE_LOST / FAILED). */
void vkrt_set_vk_error(GError **error, VkResult r, const char *what);
/* Runs `record` on the context's transfer command buffer, submits and waits. */
typedef void (*VkrtRecordFn)(VkCommandBuffer cmd, void *user);
gboolean vkrt_context_run_transfer(VkrtContext *ctx, VkrtRecordFn record, void *user, GError **error);
void vkrt_context_free_staging(VkrtContext *ctx);
/* A cached RGBA32_UINT view of [offset, offset + range) of buf. */
VkBufferView vkrt_buffer_view(VkrtBuffer *buf, uint64_t offset, uint64_t range, GError **error);
/* The bytes that view covers: from offset to the end of the buffer, at most the device's texel
 * limit, whole texels. */
uint64_t vkrt_buffer_view_range(const VkrtBuffer *buf, uint64_t offset);
/* The descriptor bindings (set 0) a SPIR-V module may write, as a bit mask; all bits when the
 * module cannot be read (vkrt_spirv.c). */
uint32_t vkrt_spirv_written_bindings(const uint32_t *code, size_t bytes);
/* The pipeline cache (vkrt_cache.c): created after the device, from the file in dir when it is
 * this device's; never fails (without a cache, pipelines are still built). Saved and destroyed
 * by vkrt_cache_close, before the device goes. */
void vkrt_cache_open(VkrtContext *ctx, const char *dir);
void vkrt_cache_close(VkrtContext *ctx);
/* GPU time per shader (vkrt_profile.c): init at context creation (on: JANUSFLOW_PROFILE set),
 * add after each submit (no-op when off), finish prints the table to stderr and frees it. */
void vkrt_profile_init(VkrtContext *ctx, bool on);
void vkrt_profile_add(VkrtContext *ctx, const char *label, double ms, uint64_t flops);
void vkrt_profile_finish(VkrtContext *ctx);
/* The pipeline for (shader, bindings, spec constants); built on first use. */
const VkrtPipeline *vkrt_context_pipeline(VkrtContext *ctx, const VkrtDispatch *d, GError **error);
