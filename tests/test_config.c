/* test_config.c: the HF config reader (model/hf_config.h). The golden model's config (HF 5's
 * rope_parameters form), Qwen2 and Llama 3 configs written here, the model_type fallback, the
 * rotary inverse frequencies (llama3's three bands against values worked out by hand), and
 * every bad config of tests/bad/configs/ refused with its exact one-line message. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kgen/abi.h"
#include "model/hf_config.h"
#include "util/jitp.h"
#include "util/vectors.h"

/* ---- helpers ------------------------------------------------------------------------------- */

/* A fresh folder under /tmp holding text as config.json; returns the folder (static). */
static const char *write_config(const char *text)
{
    static char dir[64];
    char path[128];
    snprintf(dir, sizeof dir, "/tmp/kgen_test_config_XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    return dir;
}

static void remove_config(const char *dir)
{
    char path[128];
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    rmdir(dir);
}

/* Loads text as a config; asserts it is accepted. */
static kgm_config load_text(const char *text)
{
    char err[512] = "";
    kgm_config c;
    const char *dir = write_config(text);
    int rc = kgm_config_load(&c, dir, err, sizeof err);
    remove_config(dir);
    cr_assert_eq(rc, KG_OK, "refused: %s", err);
    cr_assert_str_empty(err);
    return c;
}

static void assert_rel(double got, double want, double tol, const char *what)
{
    cr_assert(fabs(got - want) <= tol * fabs(want), "%s: got %.17g, want %.17g", what, got,
              want);
}

/* ---- accepted configs ---------------------------------------------------------------------- */

Test(config, golden_llama_gqa)
{
    char dir[4096], err[512] = "";
    snprintf(dir, sizeof dir, "%s/golden/llama_gqa", kgt_shared_dir());
    cr_assert_eq(access(dir, R_OK), 0, "%s is absent: the golden model lives in ../shared "
                 "(set KGEN_SHARED_DIR)", dir);
    kgm_config c;
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_OK, "%s", err);
    /* architectures is null there: model_type "llama" decides */
    cr_assert_eq(c.arch, KGM_LLAMA);
    cr_assert_eq(c.hidden, 256);
    cr_assert_eq(c.intermediate, 688);
    cr_assert_eq(c.layers, 3);
    cr_assert_eq(c.q_heads, 4);
    cr_assert_eq(c.kv_heads, 2);
    cr_assert_eq(c.head_dim, 64);
    cr_assert_eq(c.vocab, 512);
    cr_assert_eq(c.max_position, 256);
    cr_assert_eq(c.rms_eps, 1e-5);
    cr_assert_eq(c.rope_theta, 500000.0, "rope_parameters.rope_theta: %g", c.rope_theta);
    cr_assert_eq(c.rope_type, KGM_ROPE_DEFAULT);
    cr_assert_eq(c.tie_embeddings, 0);
    cr_assert_eq(c.qkv_bias, 0);
    cr_assert_eq(c.o_bias, 0);
    cr_assert_eq(c.dtype, KG_F32, "dtype null is float32");
    /* embed + lm_head 2 * 512 * 256, per layer q 256*256, k and v 128*256 each, o 256*256,
     * MLP 3 * 256 * 688, two norms 2 * 256; the final norm 256 */
    size_t layer = 256 * 256 + 2 * 128 * 256 + 256 * 256 + 3 * 256 * 688 + 2 * 256;
    cr_assert_eq(c.params, 2 * 512 * 256 + 3 * layer + 256);
    /* the file itself is accepted as the path too */
    char file[4200];
    snprintf(file, sizeof file, "%s/config.json", dir);
    kgm_config c2;
    cr_assert_eq(kgm_config_load(&c2, file, err, sizeof err), KG_OK, "%s", err);
    cr_assert_eq(memcmp(&c, &c2, sizeof c), 0);
}

/* Qwen2.5-0.5B's config as HF writes it: q/k/v bias without a field saying so, tied embeddings,
 * a sliding window that is off, head_dim derived (896 / 14 = 64). */
static const char qwen2_text[] =
    "{\"architectures\": [\"Qwen2ForCausalLM\"], \"attention_dropout\": 0.0,\n"
    " \"bos_token_id\": 151643, \"eos_token_id\": 151643, \"hidden_act\": \"silu\",\n"
    " \"hidden_size\": 896, \"initializer_range\": 0.02, \"intermediate_size\": 4864,\n"
    " \"max_position_embeddings\": 32768, \"max_window_layers\": 24, \"model_type\": \"qwen2\",\n"
    " \"num_attention_heads\": 14, \"num_hidden_layers\": 24, \"num_key_value_heads\": 2,\n"
    " \"rms_norm_eps\": 1e-06, \"rope_scaling\": null, \"rope_theta\": 1000000.0,\n"
    " \"sliding_window\": 32768, \"tie_word_embeddings\": true, \"torch_dtype\": \"bfloat16\",\n"
    " \"use_cache\": true, \"use_sliding_window\": false, \"vocab_size\": 151936}\n";

Test(config, qwen2)
{
    kgm_config c = load_text(qwen2_text);
    cr_assert_eq(c.arch, KGM_QWEN2);
    cr_assert_str_eq(kgm_arch_name(c.arch), "Qwen2ForCausalLM");
    cr_assert_eq(c.hidden, 896);
    cr_assert_eq(c.intermediate, 4864);
    cr_assert_eq(c.layers, 24);
    cr_assert_eq(c.q_heads, 14);
    cr_assert_eq(c.kv_heads, 2);
    cr_assert_eq(c.head_dim, 64);
    cr_assert_eq(c.vocab, 151936);
    cr_assert_eq(c.max_position, 32768);
    cr_assert_eq(c.rms_eps, 1e-6);
    cr_assert_eq(c.rope_theta, 1e6);
    cr_assert_eq(c.rope_type, KGM_ROPE_DEFAULT);
    cr_assert_eq(c.tie_embeddings, 1);
    cr_assert_eq(c.qkv_bias, 1);
    cr_assert_eq(c.o_bias, 0, "Qwen2's o_proj has no bias");
    cr_assert_eq(c.dtype, KG_BF16);
    /* Qwen2.5-0.5B has 494,032,768 parameters (tied) */
    cr_assert_eq(c.params, 494032768, "params %zu", c.params);
}

/* HF 5's form of a Qwen2 config: dtype, rope_parameters, layer_types all full attention; the
 * architecture from model_type alone (architectures absent). */
Test(config, qwen2_hf5_by_model_type)
{
    kgm_config c = load_text(
        "{\"model_type\": \"qwen2\", \"dtype\": \"float16\", \"vocab_size\": 1000,\n"
        " \"hidden_size\": 128, \"intermediate_size\": 300, \"num_hidden_layers\": 2,\n"
        " \"num_attention_heads\": 4, \"hidden_act\": \"silu\", \"tie_word_embeddings\": false,\n"
        " \"use_sliding_window\": false, \"sliding_window\": null,\n"
        " \"layer_types\": [\"full_attention\", \"full_attention\"],\n"
        " \"rope_parameters\": {\"rope_theta\": 10000.0, \"rope_type\": \"default\"}}\n");
    cr_assert_eq(c.arch, KGM_QWEN2);
    cr_assert_eq(c.qkv_bias, 1);
    cr_assert_eq(c.tie_embeddings, 0);
    cr_assert_eq(c.dtype, KG_F16);
    cr_assert_eq(c.kv_heads, 4, "num_key_value_heads defaults to num_attention_heads");
    cr_assert_eq(c.head_dim, 32);
    cr_assert_eq(c.rope_theta, 10000.0);
    /* HF's Qwen2 defaults for what the config leaves out */
    cr_assert_eq(c.max_position, 32768);
    cr_assert_eq(c.rms_eps, 1e-6);
}

/* A Llama built in code: architectures null, model_type llama; attention_bias true gives the
 * q/k/v bias; defaults of rope_theta, max_position_embeddings and the dtype. */
Test(config, llama_model_type_fallback_and_attention_bias)
{
    kgm_config c = load_text(
        "{\"architectures\": null, \"model_type\": \"llama\", \"vocab_size\": 64,\n"
        " \"hidden_size\": 48, \"intermediate_size\": 100, \"num_hidden_layers\": 1,\n"
        " \"num_attention_heads\": 6, \"num_key_value_heads\": 2, \"head_dim\": 16,\n"
        " \"attention_bias\": true, \"mlp_bias\": false, \"rope_scaling\": null}\n");
    cr_assert_eq(c.arch, KGM_LLAMA);
    cr_assert_str_eq(kgm_arch_name(c.arch), "LlamaForCausalLM");
    cr_assert_eq(c.qkv_bias, 1);
    cr_assert_eq(c.o_bias, 1, "Llama's attention_bias is on o_proj too");
    /* q, k, v [96 + 32 + 32, 48], o [48, 96], MLP 3 [100, 48], norms 2 * 48, biases 96 + 32 +
     * 32 and 48; embed and lm_head 2 [64, 48]; the final norm 48 */
    cr_assert_eq(c.params, 160 * 48 + 48 * 96 + 3 * 100 * 48 + 96 + 160 + 48 + 2 * 64 * 48 + 48,
                 "params %zu", c.params);
    cr_assert_eq(c.head_dim, 16, "head_dim given (6 * 16 = 96 is not hidden 48)");
    cr_assert_eq(c.rope_theta, 10000.0);
    cr_assert_eq(c.max_position, 2048);
    cr_assert_eq(c.rms_eps, 1e-6);
    cr_assert_eq(c.dtype, KG_F32);
    cr_assert_eq(c.tie_embeddings, 0);
    cr_assert_null(kgm_arch_name((kgm_arch)7));
}

/* ---- rotary inverse frequencies ----------------------------------------------------------- */

Test(config, rope_default_inv_freq)
{
    kgm_config c = load_text(qwen2_text);
    double f[32];
    kgm_rope_inv_freq(&c, f);
    /* theta^(-2i/d) with theta 1e6, d 64: i = 0 gives 1, i = 16 gives 1e6^(-1/2) = 1e-3,
     * i = 8 gives 1e6^(-1/4) = 10^-1.5 */
    assert_rel(f[0], 1.0, 1e-15, "inv_freq[0]");
    assert_rel(f[8], 0.031622776601683794, 1e-14, "inv_freq[8]");
    assert_rel(f[16], 1e-3, 1e-14, "inv_freq[16]");
    assert_rel(f[31], pow(10, -6.0 * 62 / 64), 1e-14, "inv_freq[31]");
}

/* Llama 3.2 1B's rope: theta 500000, d 64, factor 32, low 1, high 4, original 8192. The bands
 * in wavelength 2 pi / f: below 8192 / 4 = 2048 kept, above 8192 / 1 divided by 32, between
 * blended with s = (8192 / wavelength - 1) / (4 - 1). With f_i = 500000^(-i/32):
 *   i = 14: f = 3.2114e-3, wavelength 1956.5 < 2048: kept.
 *   i = 15: f = 2.1311e-3, wavelength 2948.3: s = (8192 / 2948.3 - 1) / 3 = 0.59285,
 *           (1 - s) f / 32 + s f = 1.2905e-3.
 *   i = 17: f = 9.3847e-4, wavelength 6695.1: s = 0.074527, blended 9.7083e-5.
 *   i = 18: f = 6.2277e-4, wavelength 10089 > 8192: f / 32 = 1.9462e-5.
 *   i = 31: f = 3.0139e-6: f / 32 = 9.4183e-8.
 * The digits below are those formulas evaluated in double precision. */
Test(config, rope_llama3_inv_freq)
{
    kgm_config c = load_text(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"head_dim\": 64, \"hidden_act\": \"silu\",\n"
        " \"hidden_size\": 2048, \"intermediate_size\": 8192,\n"
        " \"max_position_embeddings\": 131072,\n"
        " \"model_type\": \"llama\", \"num_attention_heads\": 32, \"num_hidden_layers\": 16,\n"
        " \"num_key_value_heads\": 8, \"rms_norm_eps\": 1e-05,\n"
        " \"rope_scaling\": {\"factor\": 32.0, \"high_freq_factor\": 4.0,\n"
        "   \"low_freq_factor\": 1.0,\n"
        "   \"original_max_position_embeddings\": 8192, \"rope_type\": \"llama3\"},\n"
        " \"rope_theta\": 500000.0, \"tie_word_embeddings\": true,\n"
        " \"torch_dtype\": \"bfloat16\",\n"
        " \"vocab_size\": 128256}\n");
    cr_assert_eq(c.rope_type, KGM_ROPE_LLAMA3);
    cr_assert_eq(c.rope_factor, 32.0);
    cr_assert_eq(c.rope_low_freq_factor, 1.0);
    cr_assert_eq(c.rope_high_freq_factor, 4.0);
    cr_assert_eq(c.rope_original_max_position, 8192);
    cr_assert_eq(c.rope_theta, 500000.0);
    double f[32];
    kgm_rope_inv_freq(&c, f);
    assert_rel(f[0], 1.0, 1e-15, "inv_freq[0] (kept)");
    assert_rel(f[14], 0.003211445994752591, 1e-13, "inv_freq[14] (kept)");
    assert_rel(f[15], 0.001290547928209264, 1e-13, "inv_freq[15] (blended)");
    assert_rel(f[17], 9.70828780262767e-05, 1e-13, "inv_freq[17] (blended)");
    assert_rel(f[18], 1.9461638184831125e-05, 1e-13, "inv_freq[18] (divided)");
    assert_rel(f[31], 9.41830672543491e-08, 1e-13, "inv_freq[31] (divided)");
}

/* The same scaling in HF 5's form: everything inside rope_parameters (an older rope_theta and
 * rope_scaling beside it are accepted when they agree; tests/bad/configs has them disagreeing). */
Test(config, rope_llama3_in_rope_parameters)
{
    kgm_config c = load_text(
        "{\"architectures\": [\"LlamaForCausalLM\"], \"vocab_size\": 512, \"hidden_size\": 256,\n"
        " \"intermediate_size\": 688, \"num_hidden_layers\": 3, \"num_attention_heads\": 4,\n"
        " \"num_key_value_heads\": 2, \"head_dim\": 64, \"rope_parameters\": {\"rope_type\":\n"
        " \"llama3\", \"rope_theta\": 500000.0, \"factor\": 8.0, \"low_freq_factor\": 1.0,\n"
        " \"high_freq_factor\": 4.0, \"original_max_position_embeddings\": 64},\n"
        " \"rope_theta\": 500000, \"rope_scaling\": {\"type\": \"llama3\"}}\n");
    cr_assert_eq(c.rope_type, KGM_ROPE_LLAMA3);
    cr_assert_eq(c.rope_theta, 500000.0);
    cr_assert_eq(c.rope_factor, 8.0);
    cr_assert_eq(c.rope_original_max_position, 64);
}

/* ---- refused configs: tests/bad/configs/cases.txt ------------------------------------------ */

Test(config, bad_configs)
{
    char list[4096];
    snprintf(list, sizeof list, "%s/tests/bad/configs/cases.txt", kgt_source_dir());
    FILE *f = fopen(list, "r");
    cr_assert_not_null(f, "cannot open %s", list);
    char line[1024];
    int checked = 0, failed = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (!line[0] || line[0] == '#')
            continue;
        char *bar = strchr(line, '|');
        cr_assert_not_null(bar, "%s: a line without '|': %s", list, line);
        *bar = '\0';
        char path[4200], want[5300], err[512] = "";
        snprintf(path, sizeof path, "%s/tests/bad/configs/%s", kgt_source_dir(), line);
        snprintf(want, sizeof want, "%s: %s", path, bar + 1);
        kgm_config c;
        memset(&c, 0x5a, sizeof c);
        int rc = kgm_config_load(&c, path, err, sizeof err);
        if (rc == KG_OK || strcmp(err, want) != 0 || c.hidden != 0) {
            cr_log_error("%s: rc %d\n  got  '%s'\n  want '%s'", line, rc, err, want);
            failed++;
        }
        checked++;
    }
    fclose(f);
    cr_assert_eq(failed, 0, "%d of %d bad configs were not refused as cases.txt says", failed,
                 checked);
    cr_assert_geq(checked, 40, "only %d bad configs listed", checked);
}

/* Files that are not configs at all: a missing path, a folder without config.json, a FIFO, a
 * file too large, a path too long. */
Test(config, not_a_config_file)
{
    char err[512];
    kgm_config c;
    cr_assert_eq(kgm_config_load(&c, "/nonexistent/model", err, sizeof err), KG_EIO);
    cr_assert_str_eq(err, "/nonexistent/model: cannot open (No such file or directory)");
    char dir[] = "/tmp/kgen_test_config_XXXXXX", fifo[64];
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_EIO);
    char want[128];
    snprintf(want, sizeof want, "%s/config.json: cannot open (No such file or directory)", dir);
    cr_assert_str_eq(err, want);
    snprintf(fifo, sizeof fifo, "%s/config.json", dir);
    cr_assert_eq(mkfifo(fifo, 0600), 0);
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_EIO);
    snprintf(want, sizeof want, "%s/config.json: not a regular file", dir);
    cr_assert_str_eq(err, want);
    unlink(fifo);
    /* 5 MiB (one sparse hole) is no config.json: refused before anything is read */
    FILE *f = fopen(fifo, "w");
    cr_assert_not_null(f);
    cr_assert_eq(ftruncate(fileno(f), 5L << 20), 0);
    fclose(f);
    cr_assert_eq(kgm_config_load(&c, dir, err, sizeof err), KG_EIO);
    snprintf(want, sizeof want, "%s/config.json: 5242880 bytes is above kgen's limit of 4194304 "
             "for a config.json", dir);
    cr_assert_str_eq(err, want);
    unlink(fifo);
    rmdir(dir);
    /* a path too long to hold is refused, not cut (a cut path could name another file) */
    char *longp = malloc(5000);
    cr_assert_not_null(longp);
    memset(longp, 'a', 4999);
    longp[4999] = '\0';
    cr_assert_eq(kgm_config_load(&c, longp, err, sizeof err), KG_EIO);
    cr_assert(strstr(err, "...: path longer than 4095 bytes") != NULL, "%s", err);
    free(longp);
}
