-- kgen.naming: kernel names, a grammar that can be parsed back.
--   kg_<family>_<dtypes>__<shape and option tokens>
-- e.g. kg_rmsnorm_quant_bf16_e4m3__h4096_rms_row_eps1em05. A key's `name` field says how it is
-- spelled: "dtype" (its value joins the dtype part), a code (code..value), a table of words
-- (enum value -> word), or nothing (the key does not change the code: not named).
-- A key with `omit_default = true` is left out of the name at its default value (parse puts
-- the default back), so options most kernels leave alone do not lengthen every name.
-- There is no instruction-set part: the code a kernel is generated as does not depend on the
-- ISA (its primitives are picked at run time), so one name is one text.

local M = {}

local kernel = require "kernel"
local format, gsub, match, gmatch, sub, find = string.format, string.gsub, string.match,
                                                string.gmatch, string.sub, string.find
local concat, insert = table.concat, table.insert

local function enc_number(kd, v)
  local s = kernel.fmt_value(kd, v)
  s = gsub(s, "%+", "")
  s = gsub(s, "%.", "p")
  return (gsub(s, "%-", "m"))
end

local function dec_number(s)
  s = gsub(s, "p", ".")
  return (gsub(s, "m", "-"))
end

local function default_of(kd, k)
  local d = kd.default
  if type(d) == "function" then d = d(k) end
  return d
end

-- The kernel's name: every key that shapes the code, in family order. Floats and booleans at
-- their defaults are left out to keep names short; parse() puts the defaults back.
function M.name(fam, k)
  local dtypes, tokens = {}, {}
  for _, kd in ipairs(fam.keys) do
    local nm, v = kd.name, k[kd.key]
    if kd.omit_default and nm ~= "dtype"
       and kernel.fmt_value(kd, v) == kernel.fmt_value(kd, default_of(kd, k)) then
      nm = nil
    end
    if nm == "dtype" then
      insert(dtypes, v)
    elseif type(nm) == "table" then
      insert(tokens, nm[v])
    elseif type(nm) == "string" then
      if kd.kind == "bool" then
        if v ~= default_of(kd, k) then insert(tokens, (v and "" or "no") .. nm) end
      elseif kd.kind == "int" or
             kernel.fmt_value(kd, v) ~= kernel.fmt_value(kd, default_of(kd, k)) then
        insert(tokens, nm .. enc_number(kd, v))
      end
    end
  end
  local head = "kg_" .. fam.family
  if #dtypes > 0 then head = head .. "_" .. concat(dtypes, "_") end
  if #tokens == 0 then
    error(format("family %s names no key: a name needs at least one token", fam.family), 0)
  end
  return head .. "__" .. concat(tokens, "_")
end

-- Parses a name back into (family, values): values holds every key the name spells (defaults
-- for left-out floats and booleans). Returns nil and a reason if the name is not well formed.
function M.parse(name)
  local head, mid = match(name, "^kg_(.-)__(.+)$")
  if not head or find(mid, "__", 1, true) then return nil, "not kg_<family>_<dtypes>__<tokens>" end
  local fam, dtail
  for _, f in ipairs(kernel.FAMILIES) do
    if head == f or sub(head, 1, #f + 1) == f .. "_" then
      if not fam or #f > #fam.family then fam, dtail = kernel.family(f), sub(head, #f + 2) end
    end
  end
  if not fam then return nil, "unknown family in '" .. head .. "'" end
  local values = {}
  local dparts = {}
  for d in gmatch(dtail, "[^_]+") do insert(dparts, d) end
  local tokens = {}
  for t in gmatch(mid, "[^_]+") do tokens[t] = true end
  local di = 1
  for _, kd in ipairs(fam.keys) do
    local nm = kd.name
    if nm == "dtype" then
      values[kd.key] = dparts[di]; di = di + 1
    elseif type(nm) == "table" then
      for value, word in next, nm do
        if tokens[word] then values[kd.key] = value; tokens[word] = nil end
      end
      if values[kd.key] == nil and kd.omit_default then values[kd.key] = default_of(kd, values) end
    elseif type(nm) == "string" then
      if kd.kind == "bool" then
        if tokens[nm] then values[kd.key] = true; tokens[nm] = nil
        elseif tokens["no" .. nm] then values[kd.key] = false; tokens["no" .. nm] = nil
        else values[kd.key] = default_of(kd, values) end
      else
        for t in next, tokens do
          local rest = sub(t, 1, #nm) == nm and sub(t, #nm + 1) or nil
          if rest and match(rest, "^m?%d") then
            local v = tonumber(dec_number(rest))
            if kd.kind == "int" then v = math.tointeger(v)
            else v = string.unpack("<f", string.pack("<f", v)) end
            values[kd.key] = v; tokens[t] = nil
          end
        end
        if values[kd.key] == nil and (kd.kind ~= "int" or kd.omit_default) then
          values[kd.key] = default_of(kd, values)
        end
      end
    end
  end
  local left = {}
  for t in next, tokens do insert(left, t) end
  table.sort(left)
  if #left > 0 then return nil, "unknown tokens: " .. concat(left, ", ") end
  if dparts[di] then return nil, "unexpected dtype '" .. dparts[di] .. "'" end
  return fam.family, values
end

return M
