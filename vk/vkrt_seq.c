/* vkrt recording: pipelines (built lazily from the embedded SPIR-V, cached per shader, binding
 * kinds and specialization constants, through the context's VkPipelineCache), command sequences
 * with push descriptors and push constants, barriers between conflicting commands, timestamps,
 * submission, replay, record-only warm-up and fault injection. */
#include "vkrt_internal.h"
#include "vkrt_shaders.h"

#include <stdio.h>
#include <string.h>

#define MAX_QUERIES 1024
#define PUSH_BYTES 128

/* READY: recorded and ended, runnable (again); PENDING: submitted, its fence not waited for yet
 * (vkrt_seq_submit_async), still replayable once waited for. */
typedef enum { SEQ_IDLE, SEQ_RECORDING, SEQ_READY, SEQ_PENDING } SeqState;

/* One command's use of [lo, hi) of buf. */
typedef struct { VkBuffer buf; uint64_t lo, hi; bool write; } Access;
#define MAX_PENDING 48

struct VkrtSeq {
  VkrtContext *ctx;
  VkCommandPool pool;
  VkCommandBuffer cmd;
  VkFence fence;
  VkQueryPool queries;      /* NULL when the queue has no timestamps */
  SeqState state;
  GError *error;
  uint32_t n_dispatch;
  uint64_t flops;
  const VkrtPipeline *bound;
  GPtrArray *labels;        /* one per mark; query i+1 belongs to mark i, query 0 is the start */
  GArray *mark_flops;       /* uint64_t per mark: the dispatch's FLOPs for profile marks, else 0 */
  GArray *timings;          /* VkrtTiming, labels point into `labels` */
  /* what the commands since the last barrier touch (the next command waits only if it
   * conflicts with one of these), and the barriers recorded since begin */
  Access pending[MAX_PENDING];
  uint32_t n_pending, n_barrier;
};

/* --- pipelines ------------------------------------------------------------------------------- */

/* Appends v in decimal at *p (no terminator). */
static char *put_u32(char *p, uint32_t v)
{
  char tmp[10];
  int n = 0;
  do tmp[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  while (n) *p++ = tmp[--n];
  return p;
}

/* "shader|bindings|texel mask|spec,spec,..." into buf (PIPELINE_KEY_MAX bytes). It is built for
 * every dispatch, so without printf or the heap: recording cost is host time that a GPU waits
 * for between decode tokens. FALSE if the shader name is too long for it. */
#define PIPELINE_KEY_MAX 192
static bool pipeline_key(const VkrtDispatch *d, char *buf)
{
  size_t n = strlen(d->shader);
  if (n + 3 * 11 + VKRT_MAX_SPEC * 11 + 1 > PIPELINE_KEY_MAX) return false;
  memcpy(buf, d->shader, n);
  char *p = buf + n;
  *p++ = '|';
  p = put_u32(p, d->n_bindings);
  *p++ = '|';
  p = put_u32(p, d->texel_mask);
  *p++ = '|';
  for (uint32_t i = 0; i < d->n_spec && i < VKRT_MAX_SPEC; i++) {
    p = put_u32(p, d->spec[i]);
    *p++ = ',';
  }
  *p = '\0';
  return true;
}

static VkrtPipeline *pipeline_build(VkrtContext *ctx, const VkrtDispatch *d, GError **error)
{
  size_t size = 0;
  const uint32_t *code = jf_shader_get(d->shader, &size);
  if (!code) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "no embedded shader named '%s'", d->shader);
    return NULL;
  }
  VkrtPipeline *p = g_new0(VkrtPipeline, 1);
  p->written = vkrt_spirv_written_bindings(code, size);
  VkResult r;
  VkShaderModuleCreateInfo smci = {
    .sType = VK_STRUCTURE_TYPE_SHADER_MODULE_CREATE_INFO,
    .codeSize = size,
    .pCode = code,
  };
  if ((r = vkCreateShaderModule(ctx->device, &smci, NULL, &p->module)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateShaderModule");
    goto fail;
  }
  VkDescriptorSetLayoutBinding b[VKRT_MAX_BINDINGS];
  for (uint32_t i = 0; i < d->n_bindings; i++) {
    b[i] = (VkDescriptorSetLayoutBinding){
      .binding = i,
      .descriptorType = (d->texel_mask >> i) & 1 ? VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER
                                                 : VK_DESCRIPTOR_TYPE_STORAGE_BUFFER,
      .descriptorCount = 1,
      .stageFlags = VK_SHADER_STAGE_COMPUTE_BIT,
    };
  }
  VkDescriptorSetLayoutCreateInfo dslci = {
    .sType = VK_STRUCTURE_TYPE_DESCRIPTOR_SET_LAYOUT_CREATE_INFO,
    .flags = VK_DESCRIPTOR_SET_LAYOUT_CREATE_PUSH_DESCRIPTOR_BIT_KHR,
    .bindingCount = d->n_bindings,
    .pBindings = b,
  };
  if ((r = vkCreateDescriptorSetLayout(ctx->device, &dslci, NULL, &p->set_layout)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateDescriptorSetLayout");
    goto fail;
  }
  VkPushConstantRange pcr = { VK_SHADER_STAGE_COMPUTE_BIT, 0, PUSH_BYTES };
  VkPipelineLayoutCreateInfo plci = {
    .sType = VK_STRUCTURE_TYPE_PIPELINE_LAYOUT_CREATE_INFO,
    .setLayoutCount = 1,
    .pSetLayouts = &p->set_layout,
    .pushConstantRangeCount = 1,
    .pPushConstantRanges = &pcr,
  };
  if ((r = vkCreatePipelineLayout(ctx->device, &plci, NULL, &p->layout)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreatePipelineLayout");
    goto fail;
  }
  VkSpecializationMapEntry map[VKRT_MAX_SPEC];
  for (uint32_t i = 0; i < d->n_spec; i++)
    map[i] = (VkSpecializationMapEntry){ i, i * 4, 4 };
  VkSpecializationInfo spec = { d->n_spec, map, d->n_spec * 4, d->spec };
  VkComputePipelineCreateInfo cpci = {
    .sType = VK_STRUCTURE_TYPE_COMPUTE_PIPELINE_CREATE_INFO,
    .stage = {
      .sType = VK_STRUCTURE_TYPE_PIPELINE_SHADER_STAGE_CREATE_INFO,
      .stage = VK_SHADER_STAGE_COMPUTE_BIT,
      .module = p->module,
      .pName = "main",
      .pSpecializationInfo = d->n_spec ? &spec : NULL,
    },
    .layout = p->layout,
  };
  if ((r = vkCreateComputePipelines(ctx->device, ctx->cache, 1, &cpci, NULL, &p->pipeline)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateComputePipelines");
    g_prefix_error(error, "shader '%s': ", d->shader);
    goto fail;
  }
  return p;
fail:
  if (p->layout) vkDestroyPipelineLayout(ctx->device, p->layout, NULL);
  if (p->set_layout) vkDestroyDescriptorSetLayout(ctx->device, p->set_layout, NULL);
  if (p->module) vkDestroyShaderModule(ctx->device, p->module, NULL);
  g_free(p);
  return NULL;
}

const VkrtPipeline *vkrt_context_pipeline(VkrtContext *ctx, const VkrtDispatch *d, GError **error)
{
  char key[PIPELINE_KEY_MAX];
  if (!pipeline_key(d, key)) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "shader name '%s' is too long", d->shader);
    return NULL;
  }
  g_mutex_lock(&ctx->lock);
  VkrtPipeline *p = g_hash_table_lookup(ctx->pipelines, key);
  if (!p) {
    gint64 t0 = g_get_monotonic_time();
    if ((p = pipeline_build(ctx, d, error))) {
      g_hash_table_insert(ctx->pipelines, g_strdup(key), p);
      ctx->pipelines_created++;
      ctx->pipelines_unsaved++;
    }
    ctx->pipeline_ms += (double)(g_get_monotonic_time() - t0) / 1000.0;
  }
  g_mutex_unlock(&ctx->lock);
  return p;
}

/* --- sequences ------------------------------------------------------------------------------- */

VkrtSeq *vkrt_seq_new(VkrtContext *ctx, GError **error)
{
  VkrtSeq *seq = g_new0(VkrtSeq, 1);
  seq->ctx = ctx;
  seq->labels = g_ptr_array_new_with_free_func(g_free);
  seq->mark_flops = g_array_new(FALSE, TRUE, sizeof(uint64_t));
  seq->timings = g_array_new(FALSE, TRUE, sizeof(VkrtTiming));
  VkResult r;
  VkCommandPoolCreateInfo pci = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_POOL_CREATE_INFO,
    .flags = VK_COMMAND_POOL_CREATE_RESET_COMMAND_BUFFER_BIT,
    .queueFamilyIndex = ctx->queue_family,
  };
  if ((r = vkCreateCommandPool(ctx->device, &pci, NULL, &seq->pool)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateCommandPool");
    goto fail;
  }
  VkCommandBufferAllocateInfo cai = {
    .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_ALLOCATE_INFO,
    .commandPool = seq->pool,
    .level = VK_COMMAND_BUFFER_LEVEL_PRIMARY,
    .commandBufferCount = 1,
  };
  if ((r = vkAllocateCommandBuffers(ctx->device, &cai, &seq->cmd)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkAllocateCommandBuffers");
    goto fail;
  }
  VkFenceCreateInfo fci = { .sType = VK_STRUCTURE_TYPE_FENCE_CREATE_INFO };
  if ((r = vkCreateFence(ctx->device, &fci, NULL, &seq->fence)) != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkCreateFence");
    goto fail;
  }
  if (ctx->info.has_timestamps) {
    VkQueryPoolCreateInfo qci = {
      .sType = VK_STRUCTURE_TYPE_QUERY_POOL_CREATE_INFO,
      .queryType = VK_QUERY_TYPE_TIMESTAMP,
      .queryCount = MAX_QUERIES,
    };
    if ((r = vkCreateQueryPool(ctx->device, &qci, NULL, &seq->queries)) != VK_SUCCESS) {
      vkrt_set_vk_error(error, r, "vkCreateQueryPool");
      goto fail;
    }
  }
  return seq;
fail:
  vkrt_seq_free(seq);
  return NULL;
}

void vkrt_seq_free(VkrtSeq *seq)
{
  if (!seq) return;
  if (seq->state == SEQ_PENDING)  /* the GPU may still read the command buffer */
    vkrt_seq_wait(seq, NULL);
  VkDevice dev = seq->ctx->device;
  if (seq->queries) vkDestroyQueryPool(dev, seq->queries, NULL);
  if (seq->fence) vkDestroyFence(dev, seq->fence, NULL);
  if (seq->pool) vkDestroyCommandPool(dev, seq->pool, NULL);
  g_clear_error(&seq->error);
  g_ptr_array_free(seq->labels, TRUE);
  g_array_free(seq->mark_flops, TRUE);
  g_array_free(seq->timings, TRUE);
  g_free(seq);
}

VkrtContext *vkrt_seq_context(VkrtSeq *seq) { return seq->ctx; }

void vkrt_seq_set_error(VkrtSeq *seq, GError *error)
{
  if (!error) return;
  if (seq->error) g_error_free(error);
  else seq->error = error;
}

gboolean vkrt_seq_has_error(VkrtSeq *seq) { return seq->error != NULL; }

uint32_t vkrt_seq_dispatch_count(const VkrtSeq *seq) { return seq->n_dispatch; }

/* A barrier: later dispatches and copies see every earlier write, and no earlier read sees a
 * later write. Recorded only where a command conflicts with the commands since the last one
 * (sync_before), so that independent commands may overlap on a GPU; lavapipe runs commands one
 * after the other either way. */
static void barrier(VkrtSeq *seq)
{
  seq->n_pending = 0;
  seq->n_barrier++;
  VkMemoryBarrier mb = {
    .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
    .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    .dstAccessMask = VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                     VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
  };
  VkPipelineStageFlags st = VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT;
  vkCmdPipelineBarrier(seq->cmd, st, st, 0, 1, &mb, 0, NULL, 0, NULL);
}

/* Before a command touching acc[0..n): a barrier if it conflicts with a command since the last
 * one (overlapping ranges of one buffer, at least one side writing; every buffer has memory of
 * its own, so distinct buffers never alias), or if the bookkeeping is full. */
static void sync_before(VkrtSeq *seq, const Access *acc, uint32_t n)
{
  if (seq->ctx->barrier_all || seq->ctx->profile) return;  /* sync_after put one after each */
  bool conflict = seq->n_pending + n > MAX_PENDING;
  for (uint32_t i = 0; i < n && !conflict; i++)
    for (uint32_t j = 0; j < seq->n_pending && !conflict; j++)
      conflict = seq->pending[j].buf == acc[i].buf && acc[i].lo < seq->pending[j].hi &&
                 seq->pending[j].lo < acc[i].hi && (acc[i].write || seq->pending[j].write);
  if (conflict) barrier(seq);
}

static void sync_after(VkrtSeq *seq, const Access *acc, uint32_t n)
{
  if (seq->ctx->barrier_all || seq->ctx->profile) {
    barrier(seq);  /* profile: each dispatch's timestamp then measures it alone */
    return;
  }
  for (uint32_t i = 0; i < n; i++) seq->pending[seq->n_pending++] = acc[i];
}

uint32_t vkrt_seq_barrier_count(const VkrtSeq *seq) { return seq->n_barrier; }

uint32_t vkrt_shader_written_bindings(const char *name)
{
  size_t size = 0;
  const uint32_t *code = jf_shader_get(name, &size);
  return code ? vkrt_spirv_written_bindings(code, size) : 0xffffffffu;
}

void vkrt_seq_begin(VkrtSeq *seq)
{
  GError *wait_error = NULL;
  if (seq->state == SEQ_PENDING && !vkrt_seq_wait(seq, &wait_error)) {
    /* a failure nobody waited for: the next submit reports it instead of the new recording */
    g_clear_error(&seq->error);
    seq->error = wait_error;
    seq->state = SEQ_IDLE;
    return;
  }
  g_clear_error(&seq->error);
  seq->n_dispatch = 0;
  seq->n_pending = seq->n_barrier = 0;
  seq->flops = 0;
  seq->bound = NULL;
  g_ptr_array_set_size(seq->labels, 0);
  g_array_set_size(seq->mark_flops, 0);
  g_array_set_size(seq->timings, 0);
  VkCommandBufferBeginInfo bi = { .sType = VK_STRUCTURE_TYPE_COMMAND_BUFFER_BEGIN_INFO };
  VkResult r = vkResetCommandBuffer(seq->cmd, 0);
  if (r == VK_SUCCESS) r = vkBeginCommandBuffer(seq->cmd, &bi);
  if (r != VK_SUCCESS) {
    GError *e = NULL;
    vkrt_set_vk_error(&e, r, "vkBeginCommandBuffer");
    vkrt_seq_set_error(seq, e);
    seq->state = SEQ_IDLE;
    return;
  }
  seq->state = SEQ_RECORDING;
  if (seq->queries) {
    vkCmdResetQueryPool(seq->cmd, seq->queries, 0, MAX_QUERIES);
    vkCmdWriteTimestamp(seq->cmd, VK_PIPELINE_STAGE_TOP_OF_PIPE_BIT, seq->queries, 0);
  }
}

/* Ops may record without an explicit begin (after a submit, or on a fresh sequence). */
static bool ensure_recording(VkrtSeq *seq)
{
  if (seq->state != SEQ_RECORDING) vkrt_seq_begin(seq);
  return seq->state == SEQ_RECORDING && !seq->error;
}

static void mark(VkrtSeq *seq, const char *label, uint64_t flops)
{
  if (!ensure_recording(seq) || !seq->queries) return;
  if (seq->labels->len + 1 >= MAX_QUERIES) return; /* later marks are dropped, not an error */
  g_ptr_array_add(seq->labels, g_strdup(label ? label : ""));
  g_array_append_val(seq->mark_flops, flops);
  vkCmdWriteTimestamp(seq->cmd, VK_PIPELINE_STAGE_BOTTOM_OF_PIPE_BIT, seq->queries, seq->labels->len);
}

void vkrt_seq_mark(VkrtSeq *seq, const char *label)
{
  mark(seq, label, 0);
}

const VkrtTiming *vkrt_seq_timings(VkrtSeq *seq, uint32_t *count)
{
  if (count) *count = seq->timings->len;
  return (const VkrtTiming *)(void *)seq->timings->data;
}

double vkrt_seq_gpu_ms(VkrtSeq *seq)
{
  double ms = 0;
  for (guint i = 0; i < seq->timings->len; i++)
    ms += g_array_index(seq->timings, VkrtTiming, i).ms;
  return ms;
}

/* t must lie inside its buffer. The error names `what`, or for binding >= 0 "dispatch of 'what'
 * (the shader), binding N": formatted only on failure, since this runs for every binding of
 * every dispatch. */
static bool check_tensor(VkrtSeq *seq, VkrtTensor t, const char *what, int binding)
{
  bool none = !t.buf;
  if (!none && t.offset <= t.buf->alloc_size && t.size <= t.buf->alloc_size - t.offset) return true;
  char name[128];
  if (binding >= 0)
    g_snprintf(name, sizeof name, "dispatch of '%s', binding %d", what, binding);
  else
    g_strlcpy(name, what, sizeof name);
  if (none)
    vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED, "%s: no buffer", name));
  else
    vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED,
      "%s: range %" G_GUINT64_FORMAT "+%" G_GUINT64_FORMAT " is outside its buffer of %" G_GUINT64_FORMAT " bytes",
      name, t.offset, t.size, t.buf->size));
  return false;
}

void vkrt_seq_copy(VkrtSeq *seq, VkrtTensor dst, VkrtTensor src, uint64_t size)
{
  if (!ensure_recording(seq)) return;
  if (!check_tensor(seq, dst, "copy destination", -1) || !check_tensor(seq, src, "copy source", -1)) return;
  size = MIN(size, MIN(dst.size, src.size));
  if (size == 0) return;
  VkBufferCopy region = { src.offset, dst.offset, size };
  Access acc[2] = { { src.buf->buffer, src.offset, src.offset + size, false },
                    { dst.buf->buffer, dst.offset, dst.offset + size, true } };
  sync_before(seq, acc, 2);
  vkCmdCopyBuffer(seq->cmd, src.buf->buffer, dst.buf->buffer, 1, &region);
  sync_after(seq, acc, 2);
}

void vkrt_seq_fill(VkrtSeq *seq, VkrtTensor dst, uint32_t value)
{
  if (!ensure_recording(seq)) return;
  if (!check_tensor(seq, dst, "fill", -1)) return;
  if (dst.offset % 4 || dst.size % 4) {
    vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED,
                                        "fill: offset and size must be multiples of 4"));
    return;
  }
  if (dst.size == 0) return;
  Access acc = { dst.buf->buffer, dst.offset, dst.offset + dst.size, true };
  sync_before(seq, &acc, 1);
  vkCmdFillBuffer(seq->cmd, dst.buf->buffer, dst.offset, dst.size, value);
  sync_after(seq, &acc, 1);
}

void vkrt_seq_dispatch(VkrtSeq *seq, const VkrtDispatch *d)
{
  if (!ensure_recording(seq)) return;
  VkrtContext *ctx = seq->ctx;
  if (d->n_bindings > VKRT_MAX_BINDINGS || d->n_spec > VKRT_MAX_SPEC || d->push_size > PUSH_BYTES) {
    vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED,
                                        "dispatch of '%s': too many bindings, spec constants or push bytes", d->shader));
    return;
  }
  if (d->groups[0] == 0 || d->groups[1] == 0 || d->groups[2] == 0) return;
  for (int i = 0; i < 3; i++)
    if (d->groups[i] > ctx->max_groups[i]) {
      vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_UNSUPPORTED,
                                          "dispatch of '%s': %u workgroups in dimension %d exceed the device's %u",
                                          d->shader, d->groups[i], i, ctx->max_groups[i]));
      return;
    }
  VkWriteDescriptorSet w[VKRT_MAX_BINDINGS];
  VkDescriptorBufferInfo bi[VKRT_MAX_BINDINGS];
  VkBufferView views[VKRT_MAX_BINDINGS];
  Access acc[VKRT_MAX_BINDINGS];
  for (uint32_t i = 0; i < d->n_bindings; i++) {
    VkrtTensor t = d->bindings[i];
    bool texel = (d->texel_mask >> i) & 1;
    if (!check_tensor(seq, t, d->shader, (int)i)) return;
    uint64_t range = MAX(t.size, 4);
    if (t.offset % vkrt_binding_align(ctx, texel) || range > vkrt_max_binding(ctx, texel) ||
        t.offset + range > t.buf->alloc_size) {
      vkrt_seq_set_error(seq, g_error_new(VKRT_ERROR, VKRT_ERROR_FAILED,
        "dispatch of '%s', binding %u: offset %" G_GUINT64_FORMAT " / size %" G_GUINT64_FORMAT " break the device's "
        "binding limits (alignment %" G_GUINT64_FORMAT ", max %" G_GUINT64_FORMAT ")", d->shader, i, t.offset, t.size,
        vkrt_binding_align(ctx, texel), vkrt_max_binding(ctx, texel)));
      return;
    }
    /* a texel view reaches to the end of its buffer (vkrt_buffer_view): what the shader may
     * read, as far as anyone outside it can tell, and what synchronization validation checks */
    acc[i] = (Access){ t.buf->buffer, t.offset,
                       texel ? t.offset + vkrt_buffer_view_range(t.buf, t.offset) : t.offset + range, false };
    w[i] = (VkWriteDescriptorSet){
      .sType = VK_STRUCTURE_TYPE_WRITE_DESCRIPTOR_SET,
      .dstBinding = i,
      .descriptorCount = 1,
    };
    if (texel) {
      GError *e = NULL;
      views[i] = vkrt_buffer_view(t.buf, t.offset, range, &e);
      if (!views[i]) {
        vkrt_seq_set_error(seq, e);
        return;
      }
      w[i].descriptorType = VK_DESCRIPTOR_TYPE_UNIFORM_TEXEL_BUFFER;
      w[i].pTexelBufferView = &views[i];
    } else {
      bi[i] = (VkDescriptorBufferInfo){ t.buf->buffer, t.offset, range };
      w[i].descriptorType = VK_DESCRIPTOR_TYPE_STORAGE_BUFFER;
      w[i].pBufferInfo = &bi[i];
    }
  }
  GError *e = NULL;
  const VkrtPipeline *p = vkrt_context_pipeline(ctx, d, &e);
  if (!p) {
    vkrt_seq_set_error(seq, e);
    return;
  }
  /* texel buffers are read-only by type; storage buffers as the SPIR-V says */
  for (uint32_t i = 0; i < d->n_bindings; i++)
    acc[i].write = !((d->texel_mask >> i) & 1) && ((p->written >> i) & 1);
  sync_before(seq, acc, d->n_bindings);
  if (p != seq->bound) {
    vkCmdBindPipeline(seq->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->pipeline);
    seq->bound = p;
  }
  if (d->n_bindings)
    ctx->push_descriptor_set(seq->cmd, VK_PIPELINE_BIND_POINT_COMPUTE, p->layout, 0, d->n_bindings, w);
  if (d->push_size)
    vkCmdPushConstants(seq->cmd, p->layout, VK_SHADER_STAGE_COMPUTE_BIT, 0, (d->push_size + 3) & ~3u, d->push);
  vkCmdDispatch(seq->cmd, d->groups[0], d->groups[1], d->groups[2]);
  sync_after(seq, acc, d->n_bindings);
  if (ctx->profile) mark(seq, d->shader, d->flops);
  seq->n_dispatch++;
  seq->flops += d->flops;
  g_mutex_lock(&ctx->lock);
  ctx->recorded_flops += d->flops;
  ctx->recorded_dispatches++;
  g_mutex_unlock(&ctx->lock);
}

/* --- submission ------------------------------------------------------------------------------ */

static bool validation_failed(VkrtContext *ctx, GError **error)
{
  gint n = g_atomic_int_get(&ctx->validation_messages);
  if (n > ctx->validation_reported) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_VALIDATION,
                "the Vulkan validation layer reported %d message(s) (see stderr)", n - ctx->validation_reported);
    ctx->validation_reported = n;
    return true;
  }
  return false;
}

static void read_timings(VkrtSeq *seq)
{
  g_array_set_size(seq->timings, 0);
  uint32_t n = seq->labels->len;
  if (!seq->queries || n == 0) return;
  uint64_t *ts = g_new0(uint64_t, n + 1);
  VkResult r = vkGetQueryPoolResults(seq->ctx->device, seq->queries, 0, n + 1, (n + 1) * sizeof(uint64_t), ts,
                                     sizeof(uint64_t), VK_QUERY_RESULT_64_BIT | VK_QUERY_RESULT_WAIT_BIT);
  if (r == VK_SUCCESS) {
    uint32_t bits = seq->ctx->timestamp_valid_bits;
    uint64_t mask = bits >= 64 ? UINT64_MAX : ((1ull << bits) - 1);
    for (uint32_t i = 0; i < n; i++) {
      VkrtTiming t = {
        .label = g_ptr_array_index(seq->labels, i),
        .ms = (double)((ts[i + 1] - ts[i]) & mask) * seq->ctx->info.timestamp_period_ns * 1e-6,
      };
      g_array_append_val(seq->timings, t);
    }
  }
  g_free(ts);
}

/* Submits a READY recording without waiting; PENDING on success. Its FLOPs count now, not when
 * recorded: a recording that is thrown away unrun (a pre-recorded decode token after EOS)
 * did no work. In record-only mode nothing runs and the sequence stays READY. */
static gboolean queue_submit(VkrtSeq *seq, GError **error)
{
  VkrtContext *ctx = seq->ctx;
  if (validation_failed(ctx, error)) return FALSE;
  if (ctx->lost) {
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST, "the Vulkan device was lost; re-create the context");
    return FALSE;
  }
  if (ctx->record_only) {
    /* warm-up: the recording built its pipelines, which is all it was for */
    g_array_set_size(seq->timings, 0);
    return TRUE;
  }
  if (ctx->fail_submit_in > 0 && --ctx->fail_submit_in == 0) {
    ctx->lost = true;
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_DEVICE_LOST, "the Vulkan device was lost (injected failure)");
    return FALSE;
  }
  VkSubmitInfo si = {
    .sType = VK_STRUCTURE_TYPE_SUBMIT_INFO,
    .commandBufferCount = 1,
    .pCommandBuffers = &seq->cmd,
  };
  g_mutex_lock(&ctx->lock);
  VkResult r = vkResetFences(ctx->device, 1, &seq->fence);
  if (r == VK_SUCCESS) r = vkQueueSubmit(ctx->queue, 1, &si, seq->fence);
  ctx->submits++;
  if (r == VK_ERROR_DEVICE_LOST) ctx->lost = true;
  if (r == VK_SUCCESS) ctx->flops += seq->flops;
  g_mutex_unlock(&ctx->lock);
  if (r != VK_SUCCESS) {
    vkrt_set_vk_error(error, r, "vkQueueSubmit");
    return FALSE;
  }
  seq->state = SEQ_PENDING;
  return TRUE;
}

gboolean vkrt_seq_wait(VkrtSeq *seq, GError **error)
{
  VkrtContext *ctx = seq->ctx;
  if (seq->state != SEQ_PENDING)
    return !validation_failed(ctx, error);
  /* no lock held while waiting: other threads' submits go on meanwhile */
  VkResult r = vkWaitForFences(ctx->device, 1, &seq->fence, VK_TRUE, UINT64_MAX);
  seq->state = SEQ_READY;
  if (r != VK_SUCCESS) {
    if (r == VK_ERROR_DEVICE_LOST) {
      g_mutex_lock(&ctx->lock);
      ctx->lost = true;
      g_mutex_unlock(&ctx->lock);
    }
    vkrt_set_vk_error(error, r, "vkWaitForFences");
    return FALSE;
  }
  read_timings(seq);
  if (ctx->profile)
    for (guint i = 0; i < seq->timings->len; i++) {
      const VkrtTiming *t = &g_array_index(seq->timings, VkrtTiming, i);
      vkrt_profile_add(ctx, t->label, t->ms, g_array_index(seq->mark_flops, uint64_t, i));
    }
  return !validation_failed(ctx, error);
}

/* Ends a recording (or reports its error); READY on success. */
static gboolean seq_end(VkrtSeq *seq, GError **error)
{
  if (seq->error) {
    g_propagate_error(error, seq->error);
    seq->error = NULL;
    if (seq->state == SEQ_RECORDING) vkEndCommandBuffer(seq->cmd);
    seq->state = SEQ_IDLE;
    return FALSE;
  }
  if (seq->state == SEQ_RECORDING) {
    /* make every write visible to the host, which reads mapped memory after the fence, and
     * order this recording's commands before those of later submits (another sequence's, a
     * replay of this one): without it, commands of two submits on one queue may overlap */
    VkMemoryBarrier mb = {
      .sType = VK_STRUCTURE_TYPE_MEMORY_BARRIER,
      .srcAccessMask = VK_ACCESS_SHADER_WRITE_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
      .dstAccessMask = VK_ACCESS_HOST_READ_BIT | VK_ACCESS_SHADER_READ_BIT | VK_ACCESS_SHADER_WRITE_BIT |
                       VK_ACCESS_TRANSFER_READ_BIT | VK_ACCESS_TRANSFER_WRITE_BIT,
    };
    vkCmdPipelineBarrier(seq->cmd, VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT | VK_PIPELINE_STAGE_TRANSFER_BIT,
                         VK_PIPELINE_STAGE_HOST_BIT | VK_PIPELINE_STAGE_COMPUTE_SHADER_BIT |
                         VK_PIPELINE_STAGE_TRANSFER_BIT, 0, 1, &mb, 0, NULL, 0, NULL);
    seq->n_pending = 0;
    VkResult r = vkEndCommandBuffer(seq->cmd);
    if (r != VK_SUCCESS) {
      seq->state = SEQ_IDLE;
      vkrt_set_vk_error(error, r, "vkEndCommandBuffer");
      return FALSE;
    }
    seq->state = SEQ_READY;
  }
  return TRUE;
}

gboolean vkrt_seq_submit_async(VkrtSeq *seq, GError **error)
{
  if (seq->state == SEQ_PENDING && !vkrt_seq_wait(seq, error))
    return FALSE;
  if (!seq_end(seq, error))
    return FALSE;
  if (seq->state == SEQ_IDLE) return !validation_failed(seq->ctx, error);
  return queue_submit(seq, error);
}

gboolean vkrt_seq_submit(VkrtSeq *seq, GError **error)
{
  return vkrt_seq_submit_async(seq, error) && vkrt_seq_wait(seq, error);
}

bool vkrt_seq_pending(const VkrtSeq *seq) { return seq->state == SEQ_PENDING; }

/* The command buffer is reused as it is: it resets its own query pool and writes the same
 * timestamps, so vkrt_seq_timings() is fresh after every replay. */
gboolean vkrt_seq_replay(VkrtSeq *seq, GError **error)
{
  if (seq->state == SEQ_PENDING && !vkrt_seq_wait(seq, error))
    return FALSE;
  if (seq->state == SEQ_IDLE && !seq->error) {
    /* never recorded, or its recording failed and was reported: running nothing would look
     * like success to a caller that believes the work was done */
    g_set_error(error, VKRT_ERROR, VKRT_ERROR_FAILED, "replay of a sequence with no complete recording");
    return FALSE;
  }
  if (seq->state != SEQ_READY) return vkrt_seq_submit(seq, error);
  return queue_submit(seq, error) && vkrt_seq_wait(seq, error);
}
