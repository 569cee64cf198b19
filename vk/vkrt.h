/* vkrt: the Vulkan compute runtime. Knows devices, memory, pipelines and command recording;
 * knows nothing about any model. Owner of every Vulkan object the engine uses.
 *
 * Ownership: a VkrtContext owns the instance, the device, the queue and the pipeline cache.
 * VkrtBuffer and VkrtSeq objects are created from a context, owned by their creator, and must be
 * freed before the context. Nothing here calls exit(); errors come back as GError values in
 * VKRT_ERROR. */
#pragma once

#include <glib.h>
#include <stdint.h>
#include <stdbool.h>

G_BEGIN_DECLS

#define VKRT_ERROR (vkrt_error_quark())
GQuark vkrt_error_quark(void);

typedef enum {
  VKRT_ERROR_NO_DEVICE,    /* no Vulkan instance/device, or the chosen one does not exist */
  VKRT_ERROR_OOM,          /* out of host or device memory */
  VKRT_ERROR_DEVICE_LOST,  /* the device was lost: the context must be re-created */
  VKRT_ERROR_UNSUPPORTED,  /* a required feature/extension is missing */
  VKRT_ERROR_VALIDATION,   /* the validation layer reported a message (tests) */
  VKRT_ERROR_FAILED,       /* anything else */
} VkrtError;

typedef enum {
  VKRT_DEVICE_OTHER = 0,
  VKRT_DEVICE_INTEGRATED,
  VKRT_DEVICE_DISCRETE,
  VKRT_DEVICE_VIRTUAL,
  VKRT_DEVICE_CPU,
} VkrtDeviceType;

typedef struct {
  uint32_t index;                 /* index in vkEnumeratePhysicalDevices order */
  char name[256];
  char driver[256];               /* driver name + info */
  VkrtDeviceType type;
  uint32_t vendor_id, device_id;
  uint32_t api_version;
  uint64_t device_local_bytes;    /* size of the largest device-local heap */
  uint64_t max_storage_range;     /* maxStorageBufferRange (effective, see VKRT env overrides) */
  uint64_t max_alloc;             /* maxMemoryAllocationSize */
  uint64_t min_storage_align;     /* minStorageBufferOffsetAlignment */
  uint32_t max_wg_invocations;
  uint32_t max_shared_bytes;
  uint32_t subgroup_size;
  float timestamp_period_ns;
  bool has_push_descriptor;
  bool has_timestamps;
  bool has_fp16, has_int8, has_coopmat;
  /* added by the runtime (vk helper) */
  uint64_t min_texel_align;       /* minTexelBufferOffsetAlignment */
  uint64_t max_texel_range;       /* bytes one RGBA32 texel-buffer view may span (effective) */
  bool usable;                    /* Vulkan >= 1.2 with a compute queue: the engine can run on it */
  bool has_subgroup_arith;        /* subgroupAdd/Max in compute shaders (GEMV, split attention) */
  /* added for the GPU kernels (gpu helper). has_coopmat above says the device lists
   * VK_KHR_ or VK_NV_cooperative_matrix. The engine's kernel (shaders/matmul_coop.comp) has an
   * NV build and, where the build's glslc knows GL_KHR_cooperative_matrix
   * (vkrt_coopmat_khr_built), a KHR build; either needs the extension's cooperativeMatrix,
   * shaderFloat16 and vulkanMemoryModel features and a fp16 x fp16 -> fp32 subgroup shape:
   * coopmat_m x coopmat_n x coopmat_k, all 0 when there is none. coopmat_khr says which
   * extension that shape (and the kernel) comes from: KHR where both are usable. */
  bool has_coopmat_nv;
  uint32_t coopmat_m, coopmat_n, coopmat_k;
  bool has_coopmat_khr, coopmat_khr;
  /* added for the pipeline cache (latency helper): what names a cache file, so that data from
   * another device or driver build is never offered to this one */
  uint32_t driver_version;
  uint8_t pipeline_cache_uuid[16];
} VkrtDeviceInfo;

/* "discrete", "integrated", "virtual", "cpu", "other". */
const char *vkrt_device_type_name(VkrtDeviceType type);
/* Picks a device from a vkrt_list_devices() array: selector as in VkrtOptions.device (NULL/""
 * = best). Returns the array position, or -1 with VKRT_ERROR_NO_DEVICE naming every device.
 * *why (optional, caller frees) says why this one was chosen. */
int vkrt_select_device(const GArray *devices, const char *selector, char **why, GError **error);

/* Lists every physical device. Returns a GArray of VkrtDeviceInfo (caller frees). */
GArray *vkrt_list_devices(GError **error);

typedef struct {
  /* Device selector: NULL or "" = best (discrete > integrated > virtual > CPU), else an index ("1")
   * or a case-insensitive substring of the device name ("llvmpipe"). If NULL, the environment
   * variable JANUSFLOW_DEVICE is consulted. */
  const char *device;
  /* Enable VK_LAYER_KHRONOS_validation; any message it prints makes the next submit fail with
   * VKRT_ERROR_VALIDATION. Also enabled by JANUSFLOW_VALIDATE=1. */
  bool validate;
  /* Folder of the on-disk pipeline cache; NULL or "" = none (tests stay hermetic). The context
   * reads vkrt_pipeline_cache_file(dir, device) at creation if its header says this device and
   * driver wrote it (anything else is ignored, with a g_debug note), and writes it back
   * atomically at vkrt_context_free when pipelines were built. A folder that cannot be read or
   * written never fails the context. */
  const char *pipeline_cache_dir;
} VkrtOptions;

typedef struct VkrtContext VkrtContext;
typedef struct VkrtBuffer VkrtBuffer;
typedef struct VkrtSeq VkrtSeq;

VkrtContext *vkrt_context_new(const VkrtOptions *opt, GError **error);
void vkrt_context_free(VkrtContext *ctx);
const VkrtDeviceInfo *vkrt_context_info(const VkrtContext *ctx);
/* Number of validation messages seen so far (tests assert 0). */
uint32_t vkrt_context_validation_messages(const VkrtContext *ctx);
/* Device memory currently allocated through this context, in bytes. */
uint64_t vkrt_context_allocated(const VkrtContext *ctx);
/* FLOPs of the work submitted since the last reset, replays included (the bench and the
 * no-wasted-work test read this). A recording dropped unrun does not count. */
uint64_t vkrt_context_flops(const VkrtContext *ctx);
/* FLOPs recorded by ops so far, run or not: what recording loops meter to cut submits. */
uint64_t vkrt_context_recorded_flops(const VkrtContext *ctx);
void vkrt_context_reset_flops(VkrtContext *ctx);
/* Queue submits made through this context so far (sequences and staging transfers): the
 * no-wasted-work test checks that a generation step stays at a few. */
uint64_t vkrt_context_submits(const VkrtContext *ctx);
/* Dispatches recorded through this context since its creation (replays add none): the test of
 * command-buffer replay checks that later Euler steps record nothing. */
uint64_t vkrt_context_recorded_dispatches(const VkrtContext *ctx);
/* Whether buffers live in host-visible device-local memory (read/write are memcpy), else staging.
 * JANUSFLOW_HOST_MAPPED=0 (a test knob) makes a device that has such memory (lavapipe) take the
 * discrete-GPU path instead: device memory unmapped, reads and writes through staging. */
bool vkrt_context_host_mapped(const VkrtContext *ctx);

/* --- pipelines and their cache (issue 7: time to first preview) ------------------------------ */

/* The cache file of a device in `dir`: <vendor>-<device>-<driverVersion>-<pipelineCacheUUID>.bin
 * (hex). NULL when dir is NULL or "". Caller frees. */
char *vkrt_pipeline_cache_file(const char *dir, const VkrtDeviceInfo *device);
/* The file this context reads and writes (NULL without a cache folder). Owned by the context. */
const char *vkrt_context_pipeline_cache_file(const VkrtContext *ctx);
/* Bytes of cache data handed to the driver at creation (0: no file, or it was ignored). */
uint64_t vkrt_context_pipeline_cache_loaded(const VkrtContext *ctx);
/* Writes the cache file now (atomically: a temporary file renamed over it) if pipelines were
 * built since it was read or last written. TRUE when there was nothing to do. Errors are for
 * callers that want to report them; vkrt_context_free only notes them with g_debug. */
gboolean vkrt_context_save_pipeline_cache(VkrtContext *ctx, GError **error);
/* Compute pipelines this context has built (each shader / binding kinds / specialization
 * combination once), and the host ms spent building them: a warmed-up generation builds none. */
uint64_t vkrt_context_pipelines_created(const VkrtContext *ctx);
double vkrt_context_pipeline_ms(const VkrtContext *ctx);
/* Record-only mode, for warming pipelines up: while on, vkrt_seq_submit and vkrt_seq_replay end
 * the recording (building every pipeline it uses) but run nothing on the GPU, and succeed.
 * Buffer reads, writes and fills still happen, so results read back are stale. Only for work
 * whose results are thrown away; the owner of the context switches it, from its own thread. */
void vkrt_context_set_record_only(VkrtContext *ctx, bool on);
bool vkrt_context_record_only(const VkrtContext *ctx);

/* State of the cooperative-matrix GEMM on this context, kept for vk/op_matmul.c (which runs its
 * self-check): 0 = not checked yet, 1 = passed the self-check, -1 = unavailable or disabled.
 * It leaves 0 once and is final then (later sets are ignored). *note (optional; owned by the
 * context) says why. */
/* Whether this build has the GL_KHR_cooperative_matrix kernel (meson's coopmat_khr). */
bool vkrt_coopmat_khr_built(void);
int vkrt_context_coopmat_state(VkrtContext *ctx, const char **note);
void vkrt_context_set_coopmat_state(VkrtContext *ctx, int state, const char *note);

/* Fault injection for tests (issue 6): make the Nth buffer allocation from now fail with OOM
 * (n = 0 disables), and make the next submit report device-lost. Also read from the environment
 * at context creation: JANUSFLOW_FAIL_ALLOC=N, JANUSFLOW_FAIL_SUBMIT=N. */
void vkrt_context_fail_alloc_after(VkrtContext *ctx, uint32_t n);
void vkrt_context_fail_submit_after(VkrtContext *ctx, uint32_t n);

/* --- buffers --------------------------------------------------------------------------------- */

/* A device buffer for storage use (any size up to maxBufferSize; binding windows are the ops'
 * business). Host-visible memory is used when the device offers it with device-local, else a
 * staging path is used by read/write. Contents are undefined after creation. */
VkrtBuffer *vkrt_buffer_new(VkrtContext *ctx, uint64_t size, GError **error);
/* A small buffer the host reads or writes at every step (token ids, positions, the sampled
 * id): mapped even where device memory is not (discrete GPUs without ReBAR), so that its reads
 * and writes are memcpy, not a transfer submit each. The GPU reaches it over the bus: for a
 * few bytes, not for data a kernel streams. Same as vkrt_buffer_new where memory is mapped. */
VkrtBuffer *vkrt_buffer_new_host(VkrtContext *ctx, uint64_t size, GError **error);
/* Whether read/write of buf are plain memcpy (no transfer submit). */
bool vkrt_buffer_mapped(const VkrtBuffer *buf);
void vkrt_buffer_free(VkrtBuffer *buf);
uint64_t vkrt_buffer_size(const VkrtBuffer *buf);
gboolean vkrt_buffer_write(VkrtBuffer *buf, uint64_t offset, const void *data, uint64_t size, GError **error);
gboolean vkrt_buffer_read(VkrtBuffer *buf, uint64_t offset, void *data, uint64_t size, GError **error);
gboolean vkrt_buffer_fill(VkrtBuffer *buf, uint64_t offset, uint64_t size, uint32_t value, GError **error);

/* A view of a buffer: what ops take. size = bytes from offset. */
typedef struct {
  VkrtBuffer *buf;
  uint64_t offset;
  uint64_t size;
} VkrtTensor;

static inline VkrtTensor vkrt_tensor(VkrtBuffer *buf) {
  VkrtTensor t = { buf, 0, buf ? vkrt_buffer_size(buf) : 0 };
  return t;
}
static inline VkrtTensor vkrt_tensor_sub(VkrtTensor t, uint64_t offset, uint64_t size) {
  VkrtTensor s = { t.buf, t.offset + offset, size };
  return s;
}
static inline VkrtTensor vkrt_tensor_none(void) {
  VkrtTensor t = { NULL, 0, 0 };
  return t;
}

/* --- recording ------------------------------------------------------------------------------- */

/* A sequence of recorded GPU work. Ops append dispatches to the current command buffer, with
 * the barriers they need. The first error met while recording (e.g. a pipeline that cannot be
 * built) is kept and returned by vkrt_seq_submit(); ops themselves return nothing. */
VkrtSeq *vkrt_seq_new(VkrtContext *ctx, GError **error);
void vkrt_seq_free(VkrtSeq *seq);
VkrtContext *vkrt_seq_context(VkrtSeq *seq);
/* Starts a fresh recording (drops what was recorded before). */
void vkrt_seq_begin(VkrtSeq *seq);
/* Ends recording, submits, waits for completion. Can be called again to replay the same
 * recording without re-recording (vkrt_seq_replay). */
gboolean vkrt_seq_submit(VkrtSeq *seq, GError **error);
gboolean vkrt_seq_replay(VkrtSeq *seq, GError **error);
/* vkrt_seq_submit in two halves, so the host can record other work (another sequence) while
 * the GPU runs this one: submit_async ends the recording and submits it without waiting;
 * vkrt_seq_wait waits for it (timings, profile and validation messages are read then). Work on
 * a sequence that is still running (begin, submit, replay, free) waits for it first. The host
 * must not touch buffers the running work uses until the wait; sequences submitted one after
 * the other run in that order (every recording ends with a barrier). wait on a sequence with
 * nothing in flight only reports validation messages. FLOPs count when work is submitted. */
gboolean vkrt_seq_submit_async(VkrtSeq *seq, GError **error);
gboolean vkrt_seq_wait(VkrtSeq *seq, GError **error);
bool vkrt_seq_pending(const VkrtSeq *seq);
/* Records a GPU timestamp labelled `label` (copied). After submit, vkrt_seq_timings() gives the
 * elapsed ns between consecutive marks. */
void vkrt_seq_mark(VkrtSeq *seq, const char *label);
typedef struct { const char *label; double ms; } VkrtTiming;
/* Array of (label of the mark that ends the interval, ms since the previous mark). Owned by seq. */
const VkrtTiming *vkrt_seq_timings(VkrtSeq *seq, uint32_t *count);
/* The sum of vkrt_seq_timings(): GPU ms between the first and the last mark of the last submit or
 * replay (0 without marks or timestamps). */
double vkrt_seq_gpu_ms(VkrtSeq *seq);
/* Records an error into the sequence (used by op wrappers for invalid arguments). */
void vkrt_seq_set_error(VkrtSeq *seq, GError *error /* takes ownership */);
gboolean vkrt_seq_has_error(VkrtSeq *seq);
/* Records a copy between two tensor views (size = min of the two). */
void vkrt_seq_copy(VkrtSeq *seq, VkrtTensor dst, VkrtTensor src, uint64_t size);
void vkrt_seq_fill(VkrtSeq *seq, VkrtTensor dst, uint32_t value);
/* FLOPs are counted into the context when a recording is submitted, and at every replay. */
/* Number of dispatches recorded since begin. */
uint32_t vkrt_seq_dispatch_count(const VkrtSeq *seq);
/* Pipeline barriers recorded since begin between commands (the one that ends every recording
 * not counted). A command gets a barrier before it only where it reads or writes a range that
 * a command since the last barrier wrote, or writes one such a command read: independent
 * commands (the q, k and v projections, gate and up) run concurrently on a GPU.
 * JANUSFLOW_BARRIERS=all puts one after every command, as JANUSFLOW_PROFILE does. */
uint32_t vkrt_seq_barrier_count(const VkrtSeq *seq);
/* Bit i set: binding i of the embedded shader `name` may be written (read from its SPIR-V;
 * all bits for an unknown name). For tests. */
uint32_t vkrt_shader_written_bindings(const char *name);

/* --- dispatch (for op wrappers in vk/op_*.c) ------------------------------------------------- */

#define VKRT_MAX_BINDINGS 8
#define VKRT_MAX_SPEC 8

typedef struct {
  const char *shader;                  /* name in the embedded shader table */
  uint32_t n_bindings;                 /* storage buffers at bindings 0..n-1 */
  VkrtTensor bindings[VKRT_MAX_BINDINGS];
  const void *push;                    /* push constants (<= 128 bytes) */
  uint32_t push_size;
  uint32_t spec[VKRT_MAX_SPEC];        /* specialization constants 0..n_spec-1 */
  uint32_t n_spec;
  uint32_t groups[3];                  /* workgroup counts */
  uint64_t flops;                      /* counted into the context's FLOP counter */
  /* Bit i set: binding i is a uniform texel buffer (usamplerBuffer, RGBA32_UINT texels) instead of
   * a storage buffer. Its offset must be a multiple of vkrt_binding_align(ctx, true), its size
   * at most vkrt_max_binding(ctx, true); the view is rounded up to whole texels. */
  uint32_t texel_mask;
} VkrtDispatch;

/* Largest binding (bytes) a dispatch may use: storage buffers honour maxStorageBufferRange,
 * texel buffers maxTexelBufferElements; both are lowered by JANUSFLOW_MAX_BINDING. */
uint64_t vkrt_max_binding(const VkrtContext *ctx, bool texel);
/* Required alignment of a binding's offset. */
uint64_t vkrt_binding_align(const VkrtContext *ctx, bool texel);
/* A tensor whose offset is rounded down to the binding alignment and whose size grows to keep
 * the same end; *skip = bytes between the new and the original offset (the shader adds it). */
VkrtTensor vkrt_tensor_aligned(const VkrtContext *ctx, VkrtTensor t, bool texel, uint64_t *skip);
/* Workgroup counts for `n` groups of work on a grid limited to 65535 per dimension: x*y >= n.
 * Shaders take the linear id as gl_WorkGroupID.y * gl_NumWorkGroups.x + gl_WorkGroupID.x. */
void vkrt_groups_linear(uint64_t n, uint32_t groups[3]);

/* Records one dispatch, after a barrier where it conflicts with a command recorded since the
 * last one (vkrt_seq_barrier_count: which bindings the shader writes comes from its SPIR-V,
 * texel bindings are reads). Bindings must each be within
 * max_storage_range and aligned to min_storage_align (wrappers split larger tensors). */
void vkrt_seq_dispatch(VkrtSeq *seq, const VkrtDispatch *d);

G_END_DECLS
