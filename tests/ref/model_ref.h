/* model_ref.h: the plain-loop reference forward pass of a Hugging Face Llama / Qwen2 model
 * (tests/ref/model_ref.c), what the model library's generated-kernel forward pass is checked
 * against. Never generated, never fast: written line by line from the math of HF's
 * LlamaForCausalLM, in double precision, reading the weights straight from a kgst. */
#ifndef KGEN_TEST_MODEL_REF_H
#define KGEN_TEST_MODEL_REF_H

#include <stddef.h>
#include <stdint.h>

#include "model/hf_config.h"
#include "model/st.h"

typedef struct model_ref model_ref;

/* A model of config c over the weights in st (F32, BF16 or F16 under their HF names; st must
 * outlive the model), for B sequences of up to max_ctx positions each. Every tensor is looked
 * up and its shape checked here. Returns KG_OK, or KG_ESHAPE / KG_ESPEC / KG_ENOMEM with one
 * line in err naming the tensor. */
int model_ref_open(model_ref **out, const kgm_config *c, const kgst *st, int B, long max_ctx,
                   char *err, size_t errlen);
void model_ref_close(model_ref *m);

/* Feeds T more tokens to every sequence: ids [B, T], at positions len .. len + T - 1 where len
 * is what the sequences already hold (0 after open or reset), so T = P is a prefill and then
 * T = 1 a decode step. Writes logits [B, T, V] and hidden [L + 1, B, T, H] (HF's
 * output_hidden_states: index 0 the embeddings, index l the output of layer l, the last one
 * after the final norm); either may be NULL. Returns KG_OK, or KG_EARG (a token id outside
 * the vocabulary, or len + T past max_ctx) with one line in err. */
int model_ref_forward(model_ref *m, const int64_t *ids, long T, float *logits, float *hidden,
                      char *err, size_t errlen);

/* Forgets the sequences (the KV cache is empty again). */
void model_ref_reset(model_ref *m);

/* The positions every sequence holds. */
long model_ref_len(const model_ref *m);

#endif /* KGEN_TEST_MODEL_REF_H */
