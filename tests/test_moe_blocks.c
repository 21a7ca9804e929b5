/* tests/test_moe_blocks.c: the block layout helper (kgen/moe_blocks.h) against layouts worked
 * out by hand from moe_cte.md's "Block assignment convention", and its refusals. */
#include <criterion/criterion.h>

#include <stdint.h>
#include <string.h>

#include "kgen/abi.h"
#include "kgen/moe_blocks.h"

/* T = 4 tokens, K = 2 of E = 3 experts, blocks of B = 2:
 *   expert 0: tokens 0 1 2 3 -> blocks [0 1] [2 3]
 *   expert 1: token 1        -> block  [1 pad]
 *   expert 2: tokens 0 2 3   -> blocks [0 2] [3 pad]
 * N = ceil((8 - 2) / 2) + 2 = 5 blocks, all used. */
static const uint32_t IDX[8] = { 0, 2, 1, 0, 0, 2, 2, 0 };

Test(moe_blocks, dropless_layout_by_hand)
{
    cr_assert_eq(kg_moe_blocks_count(4, 2, 3, 2), 5);
    int32_t tpi[10], b2e[5], cond[6];
    long used = -1;
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, &used, IDX, 4, 2, 3, 2, 5, 0), KG_OK);
    static const int32_t want_tpi[10] = { 0, 1, 2, 3, 1, 4, 0, 2, 3, 4 };
    static const int32_t want_b2e[5] = { 0, 0, 1, 2, 2 }, want_cond[6] = { 1, 1, 1, 1, 1, 0 };
    cr_assert_arr_eq(tpi, want_tpi, sizeof tpi);
    cr_assert_arr_eq(b2e, want_b2e, sizeof b2e);
    cr_assert_arr_eq(cond, want_cond, sizeof cond);
    cr_assert_eq(used, 5);
}

/* Two blocks more than needed: padding-only blocks of the last expert, conditions 0 there;
 * skip_token pads with -1. */
Test(moe_blocks, extra_blocks_and_skip_token)
{
    int32_t tpi[14], b2e[7], cond[8];
    long used = -1;
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, &used, IDX, 4, 2, 3, 2, 7, 1), KG_OK);
    static const int32_t want_tpi[14] = { 0, 1, 2, 3, 1, -1, 0, 2, 3, -1, -1, -1, -1, -1 };
    static const int32_t want_b2e[7] = { 0, 0, 1, 2, 2, 2, 2 };
    static const int32_t want_cond[8] = { 1, 1, 1, 1, 1, 0, 0, 0 };
    cr_assert_arr_eq(tpi, want_tpi, sizeof tpi);
    cr_assert_arr_eq(b2e, want_b2e, sizeof b2e);
    cr_assert_arr_eq(cond, want_cond, sizeof cond);
    cr_assert_eq(used, 5);
}

/* An expert no token takes gets no block; T = 0 gives padding only. */
Test(moe_blocks, unused_experts_and_no_tokens)
{
    static const uint32_t idx[3] = { 2, 2, 0 }; /* T = 3, K = 1, E = 4 */
    int32_t tpi[12], b2e[6], cond[7];
    long used = -1;
    cr_assert_eq(kg_moe_blocks_count(3, 1, 4, 2), 3); /* ceil((3 - 3) / 2) + 3 */
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, &used, idx, 3, 1, 4, 2, 6, 0), KG_OK);
    static const int32_t want_tpi[12] = { 2, 3, 0, 1, 3, 3, 3, 3, 3, 3, 3, 3 };
    static const int32_t want_b2e[6] = { 0, 2, 3, 3, 3, 3 };
    cr_assert_arr_eq(tpi, want_tpi, sizeof tpi);
    cr_assert_arr_eq(b2e, want_b2e, sizeof b2e);
    cr_assert_eq(used, 2);
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, &used, NULL, 0, 1, 4, 2, 3, 0), KG_OK);
    cr_assert_eq(used, 0);
    cr_assert_eq(cond[0], 0);
    cr_assert_eq(tpi[0], 0); /* padding id T = 0 */
}

/* Capacity 2: expert 0 keeps tokens 0 1 (drops 2 3), expert 1 token 1, expert 2 tokens 0 2
 * (drops 3). */
Test(moe_blocks, dropping_layout_by_hand)
{
    int32_t tpi[6];
    long dropped = -1;
    cr_assert_eq(kg_moe_blocks_dropping(tpi, &dropped, IDX, 4, 2, 3, 2, 0), KG_OK);
    static const int32_t want[6] = { 0, 1, 1, 4, 0, 2 };
    cr_assert_arr_eq(tpi, want, sizeof tpi);
    cr_assert_eq(dropped, 3);
}

Test(moe_blocks, affinities_masked)
{
    static const uint32_t idx[2] = { 1, 0 }; /* T = 2, K = 1, E = 2 */
    float aff[4] = { 0.25f, 0.75f, 0.5f, 0.5f }, y[4];
    cr_assert_eq(kg_moe_mask_affinities(y, aff, idx, 2, 1, 2), KG_OK);
    cr_assert(y[0] == 0 && y[1] == 0.75f && y[2] == 0.5f && y[3] == 0);
}

Test(moe_blocks, refusals_write_nothing)
{
    int32_t tpi[10], b2e[5], cond[6];
    memset(tpi, 0x55, sizeof tpi);
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, NULL, IDX, 4, 2, 3, 2, 4, 0), KG_EARG,
                 "4 blocks where 5 are needed");
    static const uint32_t out_of_range[8] = { 0, 3, 1, 0, 0, 2, 2, 0 };
    static const uint32_t repeated[8] = { 0, 0, 1, 0, 0, 2, 2, 0 };
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, NULL, out_of_range, 4, 2, 3, 2, 5, 0), KG_EARG);
    cr_assert_eq(kg_moe_blocks(tpi, b2e, cond, NULL, repeated, 4, 2, 3, 2, 5, 0), KG_EARG);
    cr_assert_eq(kg_moe_blocks_dropping(tpi, NULL, repeated, 4, 2, 3, 2, 0), KG_EARG);
    cr_assert_eq(kg_moe_blocks(NULL, b2e, cond, NULL, IDX, 4, 2, 3, 2, 5, 0), KG_EARG);
    for (int i = 0; i < 10; i++)
        cr_assert_eq(tpi[i], 0x55555555, "a refused call wrote tpi[%d]", i);
    cr_assert_eq(kg_moe_blocks_count(-1, 2, 3, 2), -1);
    cr_assert_eq(kg_moe_blocks_count(4, 4, 3, 2), -1, "K > E");
    cr_assert_eq(kg_moe_blocks_count(4, 2, 3, 0), -1, "B = 0");
    cr_assert_eq(kg_moe_blocks_count(1L << 40, 8, 64, 128), -1, "T K past the bound");
    cr_assert_eq(kg_moe_blocks_count(1L << 29, 2, 3, 1), (1L << 30) - 2 + 2, "T K = 2^30 fits");
    cr_assert_eq(kg_moe_blocks_count((1L << 29) + 1, 2, 3, 1), -1, "T K = 2^30 + 2 does not");
    cr_assert_eq(kg_moe_mask_affinities(NULL, NULL, IDX, 4, 2, 3), KG_EARG);
}
