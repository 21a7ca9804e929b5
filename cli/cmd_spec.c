/* cmd_spec.c: kgen spec --from-hf DIR: the spec of a Hugging Face model's config.json (the
 * kernels `kgen run --model` generates for it), printed (or written to -o FILE). A thin front
 * end over the model library's kgm_spec_text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "model/kgen_model.h"

const char kgc_spec_help[] =
    "Reads DIR/config.json (LlamaForCausalLM or Qwen2ForCausalLM) and prints the spec of the\n"
    "kernels the model library runs it with: the file `kgen generate`, `list`, `run` and\n"
    "`bench` take. Anything the model library cannot run is refused naming the field.\n"
    "  --from-hf DIR     the model folder (or its config.json)\n"
    "  -o FILE           write the spec to FILE instead of standard output\n"
    "  --max-context N   the KV-cache positions per sequence the limits name (default: the\n"
    "                    model's max_position_embeddings, at most 4096)\n"
    "  --max-batch N     sequences per call (default 1)\n"
    "  --weights bf16|fp8  the projections and the LM head in bf16, or in fp8: e4m3 with\n"
    "                    per-column scales (default: as config.json's dtype)\n"
    "  --tp N            the kernels of one rank of N (tensor parallelism, as kgen run --tp:\n"
    "                    its heads, intermediate columns and vocabulary slice)\n"
    "  --no-megakernel   no transformer_tkg decode megakernel (else added where the model is\n"
    "                    covered, as kgen run decodes with it)\n";

int kgc_spec(int argc, char **argv)
{
    const char *dir = NULL, *out = NULL, *ctx = NULL, *batch = NULL, *weights = NULL,
               *tp = NULL;
    int rc = KGC_OK, no_mega = 0;
    for (int i = 1; i < argc && rc == KGC_OK; i++) {
        const char *o = argv[i];
        if (!strcmp(o, "--no-megakernel")) {
            no_mega = 1;
            continue;
        }
        const char **slot = !strcmp(o, "--from-hf") ? &dir : !strcmp(o, "-o") ? &out
                            : !strcmp(o, "--max-context") ? &ctx
                            : !strcmp(o, "--max-batch") ? &batch
                            : !strcmp(o, "--weights") ? &weights
                            : !strcmp(o, "--tp") ? &tp : NULL;
        if (!slot)
            return kgc_bad_argument("spec", o);
        if (i + 1 == argc)
            return kgc_error(KGC_USAGE, "spec: %s needs a value", o);
        rc = kgc_set_once("spec", o, slot, argv[++i]);
    }
    kgm_options opt;
    kgm_options_default(&opt);
    if (!rc && ctx)
        rc = kgc_int_option("spec", "--max-context", ctx, 1, KGM_MAX_POSITION,
                            &opt.max_context);
    if (!rc && batch)
        rc = kgc_int_option("spec", "--max-batch", batch, 1, 1024, &opt.max_batch);
    long ranks = 1;
    if (!rc && tp)
        rc = kgc_int_option("spec", "--tp", tp, 1, KGM_MAX_TP, &ranks);
    opt.tp = (int)ranks;
    opt.no_megakernel = no_mega;
    if (!rc && weights && strcmp(weights, "bf16") != 0 && strcmp(weights, "fp8") != 0)
        rc = kgc_error(KGC_USAGE, "spec: --weights wants bf16 or fp8, not '%s'", weights);
    opt.weights = !weights ? KGM_WEIGHTS_STORED
                  : !strcmp(weights, "fp8") ? KGM_WEIGHTS_FP8 : KGM_WEIGHTS_BF16;
    if (!rc && !dir)
        rc = kgc_error(KGC_USAGE, "spec: expected --from-hf DIR (see kgen spec --help)");
    if (!rc && out)
        rc = kgc_writable("spec", "-o", out);
    if (rc)
        return rc;
    kgm_config c;
    char err[1024], *text = NULL;
    int st = kgm_config_load(&c, dir, err, sizeof err);
    if (st == KG_OK)
        st = kgm_spec_text(&c, &opt, &text, err, sizeof err);
    if (st != KG_OK)
        return kgc_error(kgc_exit_for(st), "%s", err);
    FILE *f = out ? fopen(out, "w") : stdout;
    int ok = f && fputs(text, f) >= 0;
    if (out && f)
        ok = fclose(f) == 0 && ok;
    free(text);
    if (!ok)
        return kgc_error(KGC_USAGE, "spec: -o %s: cannot write", out ? out : "(stdout)");
    return KGC_OK;
}
