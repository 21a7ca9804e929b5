/* cmd_make_model.c: kgen make-model, a front end over model/preset.h: a named random-weight
 * model written in Hugging Face format (config.json + model.safetensors), or the presets'
 * list. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "fsutil.h"
#include "kgen/abi.h"
#include "model/preset.h"

const char kgc_make_model_help[] =
    "Writes DIR/config.json and DIR/model.safetensors: the preset's config and seeded random\n"
    "weights (N(0, 0.02) linears and embeddings, norms near 1) under Hugging Face's tensor\n"
    "names. The files are a pure function of PRESET, --dtype and --seed.\n"
    "  -o DIR         the output folder (created, with its parents, if missing)\n"
    "  --seed N       the weights' seed (default 0)\n"
    "  --dtype T      f32, bf16 or fp16 (default bf16, every preset's)\n"
    "  --list         the presets, with what each is for\n";

static int list_presets(void)
{
    for (int i = 0; i < kgm_preset_count(); i++) {
        const kgm_preset *p = kgm_preset_at(i);
        printf("%-18s %s\n", p->name, p->summary);
    }
    return KGC_OK;
}

typedef struct options {
    const char *preset, *out, *dtype, *seed;
    int list;
} options;

static int parse(int argc, char **argv, options *o)
{
    static const char *const valued[] = { "-o", "--seed", "--dtype" };
    for (int i = 1; i < argc; i++) {
        const char **slot[] = { &o->out, &o->seed, &o->dtype };
        int k = 0;
        while (k < 3 && strcmp(argv[i], valued[k]) != 0)
            k++;
        if (k < 3 && i + 1 >= argc)
            return kgc_error(KGC_USAGE, "make-model: %s needs a value", argv[i]);
        if (k < 3 && kgc_set_once("make-model", valued[k], slot[k], argv[++i]) != KGC_OK)
            return KGC_USAGE;
        if (k < 3)
            continue;
        if (strcmp(argv[i], "--list") == 0)
            o->list = 1;
        else if (argv[i][0] != '-' && !o->preset)
            o->preset = argv[i];
        else
            return kgc_bad_argument("make-model", argv[i]);
    }
    return KGC_OK;
}

int kgc_make_model(int argc, char **argv)
{
    options o = { 0 };
    if (parse(argc, argv, &o) != KGC_OK)
        return KGC_USAGE;
    if (o.list)
        return o.preset || o.out ? kgc_error(KGC_USAGE, "make-model: --list takes no preset or "
                                             "-o") : list_presets();
    if (!o.preset)
        return kgc_error(KGC_USAGE, "make-model: which preset? (kgen make-model --list)");
    const kgm_preset *p = kgm_preset_find(o.preset);
    if (!p)
        return kgc_error(KGC_USAGE, "make-model: no preset '%s' (kgen make-model --list)",
                         o.preset);
    if (!o.out)
        return kgc_error(KGC_USAGE, "make-model: -o DIR is required");
    long seed = 0;
    if (o.seed && kgc_int_option("make-model", "--seed", o.seed, 0, LONG_MAX, &seed) != KGC_OK)
        return KGC_USAGE;
    int dtype = o.dtype ? kg_dtype_from_name(o.dtype) : (int)p->config.dtype;
    if (dtype != KG_F32 && dtype != KG_BF16 && dtype != KG_F16)
        return kgc_error(KGC_USAGE, "make-model: --dtype wants f32, bf16 or fp16, not '%s'",
                         o.dtype);
    if (kgc_folder_writable("make-model", "-o", o.out) != KGC_OK)
        return KGC_USAGE;
    if (kgf_mkdirs(o.out) != 0)
        return kgc_error(KGC_USAGE, "make-model: %s: cannot create the folder (%s)", o.out,
                         strerror(errno));
    char err[1024] = "";
    size_t bytes = 0;
    double t0 = kgc_now();
    int rc = kgm_preset_write(p, (kg_dtype)dtype, (uint64_t)seed, o.out, &bytes, err,
                              sizeof err);
    if (rc != KG_OK)
        return kgc_error(kgc_exit_for(rc), "make-model: %s", err);
    printf("wrote %s/config.json and %s/model.safetensors: %s, %s, seed %ld, %.1f MB, "
           "%.2f s\n", o.out, o.out, p->name, kg_dtype_name((kg_dtype)dtype), seed,
           (double)bytes / 1e6, kgc_now() - t0);
    return KGC_OK;
}
