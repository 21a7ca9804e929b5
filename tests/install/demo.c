/* demo.c: a serving-style program built against an installed kgen (tests/install/run.sh builds
 * it with pkg-config and with find_package): opens the model folder argv[1], prefills the ids
 * of argv[2] ("1,2,3"), decodes 3 tokens greedily and prints them, one line:
 * "tokens: ID ID ID". Exit 0, or 1 with kgen's error line. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kgen/kgen_model.h>

enum { MAX_IDS = 64, NEW_TOKENS = 3 };

/* The first largest logit, as kgen run picks it. */
static int64_t argmax(const float *x, long n)
{
    long best = 0;
    for (long i = 1; i < n; i++)
        if (x[i] > x[best])
            best = i;
    return best;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: demo MODEL_DIR ID,ID,...\n");
        return 1;
    }
    int64_t ids[MAX_IDS];
    long P = 0;
    for (char *p = argv[2]; *p && P < MAX_IDS; p += *p == ',') {
        char *end;
        ids[P++] = strtoll(p, &end, 10);
        if (end == p) {
            fprintf(stderr, "demo: bad id list '%s'\n", argv[2]);
            return 1;
        }
        p = end;
    }
    kgm_options o;
    kgm_options_default(&o);
    kgm_model *m;
    char err[512];
    if (kgm_open(&m, argv[1], &o, err, sizeof err) != KGM_OK) {
        fprintf(stderr, "demo: %s: %s\n", argv[1], err);
        return 1;
    }
    long V = kgm_config_of(m)->vocab;
    int rc = kgm_prefill(m, 1, P, ids);
    printf("tokens:");
    for (int n = 0; rc == KGM_OK && n < NEW_TOKENS; n++) {
        int64_t next = argmax(kgm_logits(m, NULL), V);
        printf(" %lld", (long long)next);
        if (n + 1 < NEW_TOKENS)
            rc = kgm_decode(m, 1, &next);
    }
    printf("\n");
    if (rc != KGM_OK)
        fprintf(stderr, "demo: %s\n", kgm_error(m));
    kgm_close(m);
    return rc == KGM_OK ? 0 : 1;
}
