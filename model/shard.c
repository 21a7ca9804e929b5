/* shard.c: Megatron tensor parallelism's split of a model over tp ranks (kgm_shard_of), as
 * ../shared/reference/transformer_tkg.md "Tensor parallelism" describes: rank r owns nq/tp query
 * heads (the columns of W_q) and the KV heads serving them (replicated on the ranks that share
 * one when tp > nkv), the same rows of W_o, I/tp columns of W_gate and W_up and rows of W_down,
 * and a slice of the vocabulary (the LM head's columns, gathered after). The residual stream,
 * the norms and the rotary tables are whole on every rank. */
#include <stdio.h>

#include "kgen/abi.h"
#include "model_int.h"

int kgm_shard_of(const kgm_config *c, int tp, int rank, kgm_shard *s, char *err, size_t errlen)
{
    if (tp < 1)
        tp = 1;
    if (tp > KGM_MAX_TP || rank < 0 || rank >= tp) {
        snprintf(err, errlen, "tensor parallelism: rank %d of %d ranks (1 to %d ranks)", rank,
                 tp, KGM_MAX_TP);
        return KG_ESPEC;
    }
    if (c->q_heads % tp != 0) {
        snprintf(err, errlen, "tensor parallelism over %d ranks: num_attention_heads %ld "
                 "(query heads) is not divisible by %d", tp, c->q_heads, tp);
        return KG_ESPEC;
    }
    /* each rank's query heads must share their KV heads with no other rank's, or be one
     * group's part: nkv a multiple of tp (nkv/tp heads each), or tp of nkv (a head per
     * tp/nkv ranks) */
    if (c->kv_heads % tp != 0 && tp % c->kv_heads != 0) {
        snprintf(err, errlen, "tensor parallelism over %d ranks: num_key_value_heads %ld "
                 "(KV heads) and %d ranks: neither divides the other", tp, c->kv_heads, tp);
        return KG_ESPEC;
    }
    if (c->intermediate % tp != 0) {
        snprintf(err, errlen, "tensor parallelism over %d ranks: intermediate_size %ld is not "
                 "divisible by %d", tp, c->intermediate, tp);
        return KG_ESPEC;
    }
    s->tp = tp, s->rank = rank;
    s->nq = c->q_heads / tp, s->q0 = rank * s->nq;
    if (c->kv_heads >= tp)
        s->nkv = c->kv_heads / tp, s->kv0 = rank * s->nkv;
    else
        s->nkv = 1, s->kv0 = rank / (tp / c->kv_heads);
    s->I = c->intermediate / tp, s->i0 = rank * s->I;
    /* the vocabulary in slices of ceil(V / tp) columns, the last one padded with zero
     * columns: an all-gather takes the same bytes from every rank */
    s->V = (c->vocab + tp - 1) / tp, s->v0 = rank * s->V;
    s->v_len = s->v0 >= c->vocab ? 0 : c->vocab - s->v0 < s->V ? c->vocab - s->v0 : s->V;
    return KG_OK;
}
