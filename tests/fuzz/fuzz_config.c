/* fuzz_config.c: libFuzzer target of the HF config reader (kgm_config_load). Any input is a
 * config.json a user could point `kgen run --model` at: it must be read or refused with one line
 * naming the file, never crash. A config it accepts must keep every promise of model/config.h
 * (sizes inside the KGM_MAX_* bounds, heads that divide, an even head_dim, the weight count
 * within its limit, experts only for Mixtral and then 1 <= top-K <= min(8, experts)) and give
 * finite, positive, non-increasing rotary frequencies. */
#include "fuzz.h"

#include <math.h>

#include "kgen/abi.h"
#include "model/hf_config.h"

static void check_accepted(const kgm_config *c)
{
    FZ_CHECK(c->arch == KGM_LLAMA || c->arch == KGM_QWEN2 || c->arch == KGM_MIXTRAL, "arch %d",
             (int)c->arch);
    if (c->arch == KGM_MIXTRAL)
        FZ_CHECK(c->experts >= 1 && c->experts <= KGM_MAX_EXPERTS &&
                 c->experts_per_tok >= 1 && c->experts_per_tok <= KGM_MAX_EXPERTS_PER_TOK &&
                 c->experts_per_tok <= c->experts, "experts %ld, experts_per_tok %ld",
                 c->experts, c->experts_per_tok);
    else
        FZ_CHECK(c->experts == 0 && c->experts_per_tok == 0, "a dense model with experts %ld",
                 c->experts);
    FZ_CHECK(c->hidden >= 1 && c->hidden <= KGM_MAX_HIDDEN, "hidden %ld", c->hidden);
    FZ_CHECK(c->intermediate >= 1 && c->intermediate <= KGM_MAX_INTERMEDIATE, "intermediate");
    FZ_CHECK(c->layers >= 1 && c->layers <= KGM_MAX_LAYERS, "layers %ld", c->layers);
    FZ_CHECK(c->q_heads >= 1 && c->q_heads <= KGM_MAX_HEADS, "q_heads %ld", c->q_heads);
    FZ_CHECK(c->kv_heads >= 1 && c->q_heads % c->kv_heads == 0, "kv_heads %ld of %ld",
             c->kv_heads, c->q_heads);
    FZ_CHECK(c->head_dim >= 2 && c->head_dim <= KGM_MAX_HEAD_DIM && c->head_dim % 2 == 0,
             "head_dim %ld", c->head_dim);
    FZ_CHECK(c->vocab >= 1 && c->vocab <= KGM_MAX_VOCAB, "vocab %ld", c->vocab);
    FZ_CHECK(c->max_position >= 1 && c->max_position <= KGM_MAX_POSITION, "max_position");
    FZ_CHECK(c->rms_eps > 0 && c->rms_eps <= 1, "rms_eps %g", c->rms_eps);
    FZ_CHECK(c->rope_theta > 1 && isfinite(c->rope_theta), "rope_theta %g", c->rope_theta);
    FZ_CHECK(c->dtype == KG_F32 || c->dtype == KG_BF16 || c->dtype == KG_F16, "dtype %d",
             (int)c->dtype);
    FZ_CHECK(c->params > 0 && c->params <= KGM_MAX_PARAMS, "params %zu", c->params);
    if (c->rope_type == KGM_ROPE_LLAMA3)
        FZ_CHECK(c->rope_factor >= 1 && c->rope_low_freq_factor > 0 &&
                 c->rope_high_freq_factor > c->rope_low_freq_factor &&
                 c->rope_original_max_position >= 1, "llama3 rope fields");
    else
        FZ_CHECK(c->rope_type == KGM_ROPE_DEFAULT, "rope_type %d", (int)c->rope_type);
    static double f[KGM_MAX_HEAD_DIM / 2];
    kgm_rope_inv_freq(c, f);
    for (long i = 0; i < c->head_dim / 2; i++) {
        FZ_CHECK(isfinite(f[i]) && f[i] >= 0 && f[i] <= 1, "inv_freq[%ld] = %g", i, f[i]);
        FZ_CHECK(i == 0 || f[i] <= f[i - 1], "inv_freq[%ld] = %g rises from %g", i, f[i],
                 f[i - 1]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512] = "";
    kgm_config c;
    const char *path = fz_file(data, size);
    memset(&c, 0xa5, sizeof c); /* the reader must set every field */
    int rc = kgm_config_load(&c, path, err, sizeof err);
    if (rc == KG_OK) {
        FZ_CHECK(err[0] == '\0', "accepted with a message: %s", err);
        check_accepted(&c);
        return 0;
    }
    FZ_CHECK(rc == KG_ESPEC || rc == KG_EIO || rc == KG_ENOMEM, "rc %d", rc);
    FZ_CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':',
             "the message does not start with the file: %s", err);
    FZ_CHECK(strchr(err, '\n') == NULL, "the message is not one line: %s", err);
    FZ_CHECK(c.hidden == 0 && c.params == 0, "a refused config left fields set");
    return 0;
}
