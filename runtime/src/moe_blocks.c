/* moe_blocks.c: moe_cte's block layout from the router's output (kgen/moe_blocks.h). */
#include <stddef.h>

#include "kgen/abi.h"
#include "kgen/ckd.h"
#include "kgen/moe_blocks.h"

/* Whether T, K, E, B are in range and T K fits. */
static int sizes_ok(long T, long K, long E, long B)
{
    size_t tk;
    if (T < 0 || K < 1 || E < 1 || B < 1 || K > E || E > KG_MOE_MAX_SLOTS ||
        B > KG_MOE_MAX_SLOTS)
        return 0;
    return !kg_ckd_mul(&tk, (size_t)T, (size_t)K) && tk <= (size_t)KG_MOE_MAX_SLOTS;
}

/* Whether every row of idx [T, K] names K distinct experts below E. */
static int index_ok(const uint32_t *idx, long T, long K, long E)
{
    for (long t = 0; t < T; t++)
        for (long k = 0; k < K; k++) {
            uint32_t e = idx[t * K + k];
            if (e >= (uint32_t)E)
                return 0;
            for (long j = 0; j < k; j++)
                if (idx[t * K + j] == e)
                    return 0;
        }
    return 1;
}

/* Whether row t of idx [T, K] names expert e. */
static int names(const uint32_t *idx, long t, long K, long e)
{
    for (long k = 0; k < K; k++)
        if (idx[t * K + k] == (uint32_t)e)
            return 1;
    return 0;
}

long kg_moe_blocks_count(long T, long K, long E, long B)
{
    if (!sizes_ok(T, K, E, B))
        return -1;
    long tk = T * K, over = tk - (E - 1);
    long n = (over > 0 ? (over + B - 1) / B : 0) + E - 1;
    return n > 0 ? n : 1;
}

int kg_moe_blocks(int32_t *token_position_to_id, int32_t *block_to_expert, int32_t *conditions,
                  long *used, const uint32_t *expert_index, long T, long K, long E, long B,
                  long N, int skip_token)
{
    size_t slots;
    if (!sizes_ok(T, K, E, B) || N < 1 || kg_ckd_mul(&slots, (size_t)N, (size_t)B) ||
        slots > (size_t)KG_MOE_MAX_SLOTS || !token_position_to_id || !block_to_expert ||
        (T > 0 && !expert_index) || !index_ok(expert_index, T, K, E))
        return KG_EARG;
    /* the blocks the routings need: each expert's count rounded up to whole blocks */
    long need = 0;
    for (long e = 0; e < E; e++) {
        long n = 0;
        for (long t = 0; t < T; t++)
            n += names(expert_index, t, K, e);
        need += (n + B - 1) / B;
    }
    if (need > N)
        return KG_EARG;
    int32_t pad = skip_token ? -1 : (int32_t)T;
    long b = 0;
    for (long e = 0; e < E; e++) {
        long j = 0; /* slots of expert e filled */
        for (long t = 0; t < T; t++) {
            if (!names(expert_index, t, K, e))
                continue;
            if (j % B == 0)
                block_to_expert[b + j / B] = (int32_t)e;
            token_position_to_id[b * B + j] = (int32_t)t;
            j++;
        }
        long nb = (j + B - 1) / B;
        for (; j < nb * B; j++)
            token_position_to_id[b * B + j] = pad;
        b += nb;
    }
    for (long r = b; r < N; r++) {
        block_to_expert[r] = (int32_t)(E - 1);
        for (long j = 0; j < B; j++)
            token_position_to_id[r * B + j] = pad;
    }
    if (conditions)
        for (long r = 0; r <= N; r++)
            conditions[r] = r < b;
    if (used)
        *used = b;
    return KG_OK;
}

int kg_moe_blocks_dropping(int32_t *token_position_to_id, long *dropped,
                           const uint32_t *expert_index, long T, long K, long E, long B,
                           int skip_token)
{
    size_t slots;
    if (!sizes_ok(T, K, E, B) || kg_ckd_mul(&slots, (size_t)E, (size_t)B) ||
        slots > (size_t)KG_MOE_MAX_SLOTS || !token_position_to_id ||
        (T > 0 && !expert_index) || !index_ok(expert_index, T, K, E))
        return KG_EARG;
    int32_t pad = skip_token ? -1 : (int32_t)T;
    long lost = 0;
    for (long e = 0; e < E; e++) {
        long j = 0;
        for (long t = 0; t < T; t++) {
            if (!names(expert_index, t, K, e))
                continue;
            if (j < B)
                token_position_to_id[e * B + j] = (int32_t)t;
            else
                lost++;
            j++;
        }
        for (; j < B; j++)
            token_position_to_id[e * B + j] = pad;
    }
    if (dropped)
        *dropped = lost;
    return KG_OK;
}

int kg_moe_mask_affinities(float *y, const float *aff, const uint32_t *expert_index, long T,
                           long K, long E)
{
    if (!sizes_ok(T, K, E, 1) || (T > 0 && (!y || !aff || !expert_index)))
        return KG_EARG;
    size_t te;
    if (kg_ckd_mul(&te, (size_t)T, (size_t)E))
        return KG_EARG;
    for (long t = 0; t < T; t++)
        for (long e = 0; e < E; e++)
            y[t * E + e] = names(expert_index, t, K, e) ? aff[t * E + e] : 0.0f;
    return KG_OK;
}
