/* tests/ref/cumsum_ref.c: reference cumulative sum (shared/reference/cumsum.md), plain loops.
 *
 * Letters: R rows (all leading axes flattened), H the summed last axis, j a column. */
#include "ref.h"

/* Upstream's free-axis tile width: the running total crosses a tile every 2048 columns. */
#define TILE 2048

/* out[r, j] = x[r, 0] + ... + x[r, j], one fp32 running total added left to right.
 * If tile_carry_round is not NULL, the total is replaced by tile_carry_round(total) after
 * the last column of each 2048-wide tile (columns 2047, 4095, ...): upstream writes each tile
 * in the output dtype and reads the next tile's carry back from that rounded value.
 * out, x: [R, H] */
void cumsum_ref(float *out, const float *x, int rows, int H, float (*tile_carry_round)(float))
{
    for (int r = 0; r < rows; r++) {
        float acc = 0.0f;
        for (int j = 0; j < H; j++) {
            acc = acc + x[(long)r * H + j];
            out[(long)r * H + j] = acc;
            if (tile_carry_round && j % TILE == TILE - 1)
                acc = tile_carry_round(acc);
        }
    }
}
