/* uvit: JanusFlow's generation-side vision modules on Vulkan (MODEL.md §4.4-4.8): the timestep
 * embedding, the ShallowUViT encoder + vision_gen_enc_aligner (latent -> LLM input tokens) and
 * vision_gen_dec_aligner_norm + vision_gen_dec_aligner + the ShallowUViT decoder (LLM hidden
 * states -> velocity). The LLM itself is not here.
 *
 * Layouts: latents and velocities are NCHW fp32 [n, 4, h, w] (the fixture layout); everything
 * else is token-major, [rows, n_tokens, features] with token = grid row * grid_w + grid col.
 *
 * One Euler step with CFG over n images (CFG rows: 0..n-1 conditional, n..2n-1 unconditional):
 *
 *   uvit_set_time(u, t, n)                          host: t on the 0..1000 scale, one per image
 *   uvit_record_time_embed(u, seq, n, t_emb)        t_emb [n, hidden]
 *   uvit_record_encode(u, seq, n, z, t_emb, tok, s) image tokens for the LLM, [n, n_tokens, hidden]
 *                                                   (row b at tok + b*s floats); keeps the skip
 *   ... the caller builds the LLM input per CFG row ([t_emb row b % n | tokens of image b % n]),
 *       runs the LLM and gets the hidden states after its final norm ...
 *   uvit_record_decode(u, seq, 2n, H, hs, t_emb, n, v)   v [2n, 4, h, w] (row r at H + r*hs floats)
 *   vkrt_op_cfg_euler(seq, z, x0, v_out, v, {cfg, dt, t/1000}, n, 4*h*w)  (vk/ops_gen.h)
 *
 * The encoder runs once per step for both CFG rows: in the decoder, row r uses the skip, t_emb
 * and FiLM modulation of image r % n. The time embedding is read from a buffer that
 * uvit_set_time writes at once (not recorded): set it before each submit or replay.
 *
 * Recording functions append to a VkrtSeq and never submit; invalid arguments are recorded as
 * the sequence's error. JfUvit owns its weights and scratch buffers (sized at creation for
 * max_batch images, 2*max_batch decoder rows) and must be freed before the context. */
#pragma once
#include "config.h"
#include "safetensors.h"
#include "vkrt.h"

G_BEGIN_DECLS

typedef struct JfUvit JfUvit;

/* Loads vision_gen_enc_model.*, vision_gen_enc_aligner.*, vision_gen_dec_aligner_norm.*,
 * vision_gen_dec_aligner.*, vision_gen_dec_model.* from f. Sizes come from the tensors and cfg
 * (in_conv kernel from in_conv.weight, padding = kernel - stride). The latent size must map onto
 * a whole token grid and back (latent = grid * unpatch factor). */
JfUvit *uvit_new(VkrtContext *ctx, const StFile *f, const JfModelConfig *cfg, int max_batch,
                 int latent_h, int latent_w, GError **error);
void uvit_free(JfUvit *u);

uint32_t uvit_n_tokens(const JfUvit *u);      /* grid_h * grid_w */
uint32_t uvit_hidden(const JfUvit *u);        /* LLM hidden size (t_emb, tokens, hidden states) */
uint32_t uvit_latent_channels(const JfUvit *u);
uint32_t uvit_max_batch(const JfUvit *u);
uint64_t uvit_weight_bytes(const JfUvit *u);

/* Writes the sinusoidal features of t[0..n-1] (0..1000 scale, used as given: no bf16 rounding)
 * into the buffer the time embedding reads. Features [cos | sin] of t * 10000^(-j/half), the
 * argument rounded to fp32 as the reference computes it, cos/sin evaluated in double. */
gboolean uvit_set_time(JfUvit *u, const float *t, uint32_t n, GError **error);

/* t_emb [n, hidden] = linear_2(SiLU(linear_1(features))). n <= 2 * max_batch. */
void uvit_record_time_embed(JfUvit *u, VkrtSeq *seq, uint32_t n, VkrtTensor t_emb);

/* Encoder for n <= max_batch images: z [n, 4, h, w] NCHW, t_emb [n, hidden]. Writes the image
 * tokens of image b ([n_tokens, hidden], after vision_gen_enc_aligner) at tokens + b *
 * tokens_stride floats (tokens_stride >= n_tokens * hidden; 0 = dense). Keeps the encoder output
 * (the decoder's skip) until the next encode. */
void uvit_record_encode(JfUvit *u, VkrtSeq *seq, uint32_t n, VkrtTensor z, VkrtTensor t_emb,
                        VkrtTensor tokens, uint64_t tokens_stride);

/* Decoder for `rows` CFG rows (rows <= 2 * max_batch, a multiple of n) of the n images encoded
 * last: hidden holds, for row r at hidden + r * hidden_stride floats, the LLM's last n_tokens
 * hidden states [n_tokens, hidden] after the LLM's final norm (hidden_stride >= n_tokens *
 * hidden; 0 = dense). t_emb [n, hidden]. velocity [rows, 4, h, w] NCHW. */
void uvit_record_decode(JfUvit *u, VkrtSeq *seq, uint32_t rows, VkrtTensor hidden,
                        uint64_t hidden_stride, VkrtTensor t_emb, uint32_t n, VkrtTensor velocity);

/* Intermediates kept for tests and debugging (valid after the recording ran):
 * the encoder output / skip, [n, n_tokens, enc_channels] channel-last; and the decoder input
 * (vision_gen_dec_aligner output, before input_norm), [rows, n_tokens, dec_in_channels]. */
VkrtTensor uvit_skip(JfUvit *u, uint32_t *channels);
VkrtTensor uvit_dec_input(JfUvit *u, uint32_t *channels);

G_END_DECLS
