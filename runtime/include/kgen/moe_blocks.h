/* kgen/moe_blocks.h: the block layout moe_cte takes (shared/reference/moe_cte.md, "Block
 * assignment convention"), built from the router's output, so that a model can run MoE CTE.
 * Every size is bounded and every product overflow-checked; bad input is KG_EARG, never a
 * crash, and nothing is written then. */
#ifndef KGEN_MOE_BLOCKS_H
#define KGEN_MOE_BLOCKS_H

#include <stdint.h>

/* Largest T * K and N * B accepted (slot ids and block ids stay int32). */
#define KG_MOE_MAX_SLOTS (1L << 30)

/* The dropless layout's static block count for T tokens of K experts each among E in blocks
 * of B slots: ceil((T K - (E - 1)) / B) + E - 1, at least 1 (every expert may need a
 * partial block). -1 if a size is out of range (T < 0, K < 1, E < 1, B < 1, K > E, or T K
 * past KG_MOE_MAX_SLOTS). */
long kg_moe_blocks_count(long T, long K, long E, long B);

/* The dropless layout from expert_index [T, K] (the router's top-K, each row's experts
 * distinct and in [0, E)): per expert e in ascending order, ceil(n_e / B) blocks holding the
 * tokens that route to e in ascending token order, unfilled slots padding (T, or -1 with
 * skip_token); the blocks left of the N given go to expert E - 1, all padding.
 * token_position_to_id [N, B], block_to_expert [N], conditions [N + 1] (NULL: not made): 1
 * for the blocks holding a routing, 0 from the first block that holds none on (its last entry
 * 0). *used (may be NULL): the blocks holding a routing. KG_EARG if N is smaller than the
 * layout needs, an index is out of range or repeated in a row, or a size is out of range. */
int kg_moe_blocks(int32_t *token_position_to_id, int32_t *block_to_expert, int32_t *conditions,
                  long *used, const uint32_t *expert_index, long T, long K, long E, long B,
                  long N, int skip_token);

/* The capacity-dropping layout: block e is expert e's B slots (B = capacity), its tokens in
 * ascending order, those past the capacity dropped, unfilled slots padding.
 * token_position_to_id [E, B]; *dropped (may be NULL): the routings left out. */
int kg_moe_blocks_dropping(int32_t *token_position_to_id, long *dropped,
                           const uint32_t *expert_index, long T, long K, long E, long B,
                           int skip_token);

/* expert_affinities_masked [T, E] from the router's dense affinities [T, E] (fp32): the
 * entries of the experts a row's expert_index names, 0 elsewhere. y may be aff. */
int kg_moe_mask_affinities(float *y, const float *aff, const uint32_t *expert_index, long T,
                           long K, long E);

#endif /* KGEN_MOE_BLOCKS_H */
