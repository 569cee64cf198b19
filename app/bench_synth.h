/* bench_synth: what `janusflow bench` runs on. Synthetic random-weight checkpoints of a named size
 * (written once into the user's cache by the jf-make-checkpoint code, linked in), and the prompt
 * shapes of the reference bench: the chat prompt with one image and the generation prefix of the
 * default prompt, tokenized by the DeepSeek-LLM tokenizer so that the lengths are realistic even
 * for models whose own vocabulary is smaller. */
#pragma once
#include "model.h"

G_BEGIN_DECLS

/* Sizes of a preset: parameters of the model and of the VAE decoder; FALSE for unknown names. */
gboolean bench_synth_preset(const char *name, double *model_params, double *vae_params);

/* Makes sure $XDG_CACHE_HOME/janusflow/synthetic/<name>/{janusflow,vae} hold a complete
 * checkpoint of preset `name` (tiny, small, full; seed 0), writing it if not: progress goes to
 * stderr. `full` is about 4.3 GB on disk; a lack of free space is reported before writing.
 * *model_dir and *vae_dir are newly allocated. */
gboolean bench_synth_ensure(const char *name, char **model_dir, char **vae_dir, GError **error);

typedef struct {
  GArray *chat_ids;       /* int32, model ids: the chat prompt, image block expanded */
  uint32_t image_start;   /* index of the image-start row in chat_ids */
  uint32_t image_tokens;  /* image rows after it */
  char *gen_prompt;       /* the text to hand to gen_run: the model's tokenizer makes P tokens of it */
  uint32_t gen_prefix;    /* P: the generation prompt's ids without the trailing image-start tag */
  uint32_t gen_prefix_got;/* P that gen_prompt really gives with the model's tokenizer */
  char *tokenizer;        /* which tokenizer set the lengths (for the report) */
} BenchPrompts;

/* ref_tokenizer: NULL = the model's own tokenizer (a real checkpoint); else a DeepSeek-LLM
 * tokenizer.json whose token counts are used: chat ids are folded into the model's vocabulary
 * (special tags mapped onto the model's), and the generation prompt is shortened or padded to a
 * stand-in text with the same count in the model's tokenizer. */
gboolean bench_prompts_make(JfModel *m, const char *prompt, const char *ref_tokenizer, BenchPrompts *out,
                            GError **error);
void bench_prompts_clear(BenchPrompts *p);

G_END_DECLS
