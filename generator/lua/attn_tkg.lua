-- kgen.attn_tkg: the template parameters of the decode-attention core (templates/
-- attn_tkg_core.c.in), shared by the families that include it (attention_tkg,
-- attention_block_tkg): the tiling, the fp32 scratch of a (sequence, KV head) pair and of a
-- task, how the KV cache widens to fp32 and which primitives read it as stored.

local ctypes = require "ctypes"
local scratch = require "scratch"
local format = string.format

local M = {}

-- Context slots per task (the flash-decoding split) and per tile inside a task.
M.CHUNK, M.TILE = 512, 64

-- How a row of dtype dt becomes fp32: the runtime's primitives, or a plain copy for f32.
function M.widen(dt)
  if dt == "f32" then return "copy_f32" end
  if ctypes.FP8[dt] then return ctypes.FP8[dt].to_f32 end
  return ctypes.info(dt).to_f32
end

function M.ctype(dt) return ctypes.is_float(dt) and ctypes.info(dt).c or "kg_u8" end

-- The score and value passes on cache rows of dtype dt as stored: kgp_qk_<dt> and kgp_pv_<dt>
-- (fp32 rows: P @ V is kgp_axpy_rows_f32, the bits of every kgp_pv_*).
local SFX = { f32 = "f32", bf16 = "bf16", fp16 = "f16", e4m3 = "e4m3" }
function M.qk(dt) return "kgp_qk_" .. SFX[dt] end
function M.pv(dt) return dt == "f32" and "kgp_axpy_rows_f32" or "kgp_pv_" .. SFX[dt] end

-- The core's parameters for d_head d, q_head query heads of each of n_kv KV heads, s_active
-- tokens, a cache of S slots a sequence (block_len > 0: in blocks), K stored as rows (tpk) or
-- columns, and a kv_dtype cache. The active K (V) rows are read as fp32 from the pair's scratch
-- with ka_pair (va_pair), else as stored from the context's k_active (v_active). Other keys
-- (POS, SWA, SINK) the family adds. The mask holds o.mask_hq query heads per (slot, sequence)
-- (default: the call's HQ; more when the call's heads are a slice of a wider mask, read in place).
function M.params(o)
  local d, sa, g = o.d, o.sa, o.qh * o.sa
  local p = {
    D = d, QH = o.qh, NKV = o.nkv, HQ = o.nkv * o.qh, SA = sa, G = g, S = o.S,
    MASK_HQ = o.mask_hq or o.nkv * o.qh,
    BLK = o.blk, NBLK = o.blk > 0 and o.S // o.blk or 0, TPK = o.tpk,
    KV_DTYPE = o.kv_dtype, KCT = M.ctype(o.kv_dtype), KV_WIDEN = M.widen(o.kv_dtype),
    QK = M.qk(o.kv_dtype), PV = M.pv(o.kv_dtype), KA_PAIR = o.ka_pair, VA_PAIR = o.va_pair,
    CHUNK = M.CHUNK, TILE = M.TILE,
    KVB = ctypes.is_float(o.kv_dtype) and ctypes.info(o.kv_dtype).bytes or 1,
  }
  -- per (sequence, KV head): its G query rows in fp32, and the active K, V rows read from it
  p.PAIR = scratch.layout {
    { "Q", g * d, format("Q [%d, %d]: the query rows%s", g, d, o.q_doc or "") },
    { "KA", o.ka_pair and sa * d or 0,
      format("[%d, %d]: the active K rows%s", sa, d, o.k_doc or "") },
    { "VA", o.va_pair and sa * d or 0, format("[%d, %d]: the active V rows", sa, d) },
  }
  -- per task (sequence, KV head, chunk of CHUNK slots): the partial softmax of its G rows
  p.TASK = scratch.layout {
    { "M", g, format("[%d]: each row's running max over the chunk", g) },
    { "L", g, format("[%d]: each row's sum of exp(s - M)", g) },
    { "O", g * d, format("[%d, %d]: each row's sum of exp(s - M) v", g, d) },
  }
  return p
end

return M
