/* mega.c: the transformer_tkg megakernel's lists (kgm_mega): allocated at open when
 * kgm_megakernel says the model is covered, bound to the layers' weights once loaded. */
#include <stdio.h>
#include <stdlib.h>

#include "model_int.h"

int kgm_mega_alloc(kgm_model *m, char *err, size_t errlen)
{
    kgm_mega *g = &m->mega;
    size_t L = (size_t)m->c.layers, E = L * (size_t)m->sh.nkv;
    m->mega_on = 1;
    g->k = calloc(E, sizeof *g->k), g->v = calloc(E, sizeof *g->v);
    g->qkv = calloc(L, sizeof *g->qkv), g->o = calloc(L, sizeof *g->o);
    g->gate = calloc(L, sizeof *g->gate), g->up = calloc(L, sizeof *g->up);
    g->down = calloc(L, sizeof *g->down);
    g->ln1 = calloc(L, sizeof *g->ln1), g->ln2 = calloc(L, sizeof *g->ln2);
    int bad = !g->k || !g->v || !g->qkv || !g->o || !g->gate || !g->up || !g->down ||
              !g->ln1 || !g->ln2;
    if (bad)
        snprintf(err, errlen, "out of memory for the megakernel's lists");
    return bad ? KG_ENOMEM : KG_OK;
}

void kgm_mega_bind(kgm_model *m)
{
    kgm_mega *g = &m->mega;
    for (long l = 0; m->mega_on && l < m->c.layers; l++) {
        const kgm_layer *L = &m->layers[l];
        g->qkv[l] = &L->qkv, g->o[l] = &L->o; /* the layout the chain's kernels read */
        g->gate[l] = &L->gate, g->up[l] = &L->up, g->down[l] = &L->down;
        g->ln1[l] = L->ln1, g->ln2[l] = L->ln2;
    }
}

void kgm_mega_free(kgm_model *m)
{
    kgm_mega *g = &m->mega;
    for (long e = 0; g->k && e < m->c.layers * m->sh.nkv; e++)
        free(g->k[e]), free(g->v[e]);
    free(g->k), free(g->v), free(g->qkv), free(g->o);
    free(g->gate), free(g->up), free(g->down), free(g->ln1), free(g->ln2);
    free(g->cos), free(g->sin), free(g->mask), free(g->pos), free(g->out);
}
