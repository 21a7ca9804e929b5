/* preset.h: named random-weight models written in Hugging Face format (kgm_preset_ prefix):
 * config.json and model.safetensors under HF's tensor names, every weight a pure function of
 * (preset, dtype, seed), so a test, a benchmark and the README run the same model anywhere
 * without downloading one. */
#ifndef KGEN_MODEL_PRESET_H
#define KGEN_MODEL_PRESET_H

#include <stddef.h>
#include <stdint.h>

#include "model/hf_config.h"

typedef struct kgm_preset {
    const char *name;
    const char *summary;
    kgm_config config;       /* what config.json says (dtype: the default weight dtype) */
} kgm_preset;

/* The presets, in a fixed order, and one by name (NULL if there is none). */
int kgm_preset_count(void);
const kgm_preset *kgm_preset_at(int i);
const kgm_preset *kgm_preset_find(const char *name);

/* The initial weights, drawn like a real init so activations stay sane through the layers:
 * linear weights and embeddings N(0, 0.02) (HF's initializer_range), biases N(0, 0.02), norm
 * weights 1 + N(0, 0.05). N is Irwin-Hall of four uniforms (within 3.5 sigma), from a
 * counter-based generator (splitmix64 of seed, tensor and element index): any element can be
 * drawn alone, so weights are made in parallel and streamed, in any chunking, to the same
 * bits. */
#define KGM_PRESET_STD 0.02f
#define KGM_PRESET_NORM_STD 0.05f

/* Element e (as f32, before rounding to the file's dtype) of the tensor with index tensor in
 * the preset's file order, of kind norm (nonzero) or not. */
float kgm_preset_value(uint64_t seed, int tensor, int norm, uint64_t e);

/* Writes DIR/config.json (sorted keys, jansson) and DIR/model.safetensors (kgst_write_stream)
 * for preset p with weights in dtype (KG_F32, KG_BF16 or KG_F16) and seed. DIR is created if
 * missing (not its parents); both files go through a temporary file renamed into place.
 * *bytes (if not NULL) receives the size of model.safetensors. Returns KG_OK, KG_ESPEC (a
 * dtype the presets do not write) or KG_EIO / KG_ENOMEM with one line in err. */
int kgm_preset_write(const kgm_preset *p, kg_dtype dtype, uint64_t seed, const char *dir,
                     size_t *bytes, char *err, size_t errlen);

#endif /* KGEN_MODEL_PRESET_H */
