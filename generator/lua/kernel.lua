-- kgen.kernel: a kernel's keys (dimensions and options) from a spec entry or a problem string,
-- checked and normalized into one table. The same keys name the kernel and feed its template.

local M = {}

local f32 = require "f32"

local format, match, gmatch, find = string.format, string.match, string.gmatch, string.find
local concat, insert, sort = table.concat, table.insert, table.sort
local pack, unpack = string.pack, string.unpack
local mtype = math.type

---------------------------------------------------------------------------------------------
-- Families
---------------------------------------------------------------------------------------------

-- The families kgen knows, from generator/families.txt (the one list; the C host embeds it as
-- host.families): one name a line, blank lines and # comments ignored. CMake reads the same
-- file with the same rule.
local function read_families(text)
  local list = {}
  for line in gmatch(text, "[^\n]+") do
    if match(line, "^[a-z0-9_]+$") then insert(list, line)
    elseif not match(line, "^[ \t]*#") and not match(line, "^[ \t]*$") then
      error("generator/families.txt: '" .. line .. "' is not a family name or a comment", 0)
    end
  end
  return list
end

M.FAMILIES = read_families(host.families)

-- Names that once were spec fields or kernel keys and now change nothing: naming one is an
-- error that says why (a field that does nothing must not be silently accepted).
M.RETIRED = {
  isa = "no kernel's code depended on it; the runtime picks the primitives' instruction set "
        .. "from the CPU's features (KGEN_ISA overrides)",
}

local cache = {}
function M.family(name)
  if cache[name] then return cache[name] end
  local known = false
  for _, f in ipairs(M.FAMILIES) do if f == name then known = true end end
  if not known then return nil end
  local fam = require("family." .. name)
  fam.key_index = {}
  for _, k in ipairs(fam.keys) do fam.key_index[k.key] = k end
  cache[name] = fam
  return fam
end

---------------------------------------------------------------------------------------------
-- Values
---------------------------------------------------------------------------------------------

local to_f32 = f32.round

M.fmt_float = f32.shortest

-- The bound every integer key and spec field meets at the door, unless its own max is lower:
-- no model has a dimension past 2^31-1, and products of such values are what sizes are formed
-- from (check_sizes bounds those).
M.DIM_MAX = 2^31 - 1 | 0

-- The largest size (in elements or bytes) a generated kernel may form: a double still counts
-- it exactly (the cost block) and a C long holds it with room to spare.
M.SIZE_MAX = 2^53

-- True if x is a number that stays finite as a float32 (not NaN, not inf, not past FLT_MAX).
function M.finite_f32(x)
  if type(x) ~= "number" then return false end
  local r = to_f32(x)
  return r == r and r ~= math.huge and r ~= -math.huge
end

function M.fmt_value(kd, v)
  if kd.kind == "int" then return format("%d", v) end
  if kd.kind == "float" then return M.fmt_float(v) end
  if kd.kind == "bool" then return v and "true" or "false" end
  return v
end

local function describe_range(kd)
  local parts = {}
  if kd.kind == "enum" then return "one of " .. concat(kd.values, ", ") end
  if kd.min then insert(parts, ">= " .. M.fmt_value(kd, kd.min)) end
  if kd.max then insert(parts, "<= " .. M.fmt_value(kd, kd.max)) end
  if kd.multiple_of then insert(parts, "a multiple of " .. kd.multiple_of) end
  if kd.kind == "int" and not kd.max then insert(parts, "<= " .. M.fmt_value(kd, M.DIM_MAX)) end
  if kd.kind == "float" then insert(parts, "finite in float32") end
  local what = ({ int = "an integer", float = "a number", bool = "true or false" })[kd.kind]
  if #parts == 0 then return what end
  return what .. " " .. concat(parts, " and ")
end

local function shown(v)
  if type(v) == "string" then return format("%q", v) end
  if mtype(v) == "float" then return M.fmt_float(to_f32(v)) end
  return tostring(v)
end

-- Converts a raw value (a Lua value from a spec, or a string from a problem string) to the
-- key's kind; returns the value or nil and a reason.
local function coerce(kd, raw, from_text)
  local v = raw
  if from_text then
    if kd.kind == "int" then v = match(raw, "^%-?%d+$") and math.tointeger(tonumber(raw))
    elseif kd.kind == "float" then
      v = tonumber(raw)
      -- tonumber("-0") is the integer 0: keep the sign, so -0 names the same kernel both ways
      if v == 0 and match(raw, "^%s*%-") then v = -0.0 end
    elseif kd.kind == "bool" then
      v = ({ ["true"] = true, ["1"] = true, ["false"] = false, ["0"] = false })[raw]
    end
  end
  local ok
  if kd.kind == "int" then ok = mtype(v) == "integer" or (mtype(v) == "float" and v == math.floor(v) and math.abs(v) < 2^53)
    if ok then v = math.tointeger(v) end
  elseif kd.kind == "float" then ok = M.finite_f32(v)  -- NaN, inf and 1e39 (inf in f32) refused
    if ok then v = to_f32(v) end
  elseif kd.kind == "bool" then ok = type(v) == "boolean"
  else
    ok = false
    for _, e in ipairs(kd.values) do if v == e then ok = true end end
  end
  if ok and kd.min and v < kd.min then ok = false end
  if ok and kd.max and v > kd.max then ok = false end
  if ok and kd.kind == "int" and not kd.max and v > M.DIM_MAX then ok = false end
  if ok and kd.multiple_of and v % kd.multiple_of ~= 0 then ok = false end
  if not ok then
    return nil, format("expected %s, got %s", describe_range(kd), shown(raw))
  end
  return v
end

local function get_path(t, path)
  for part in gmatch(path, "[^%.]+") do
    if type(t) ~= "table" then return nil end
    t = t[part]
  end
  return t
end

---------------------------------------------------------------------------------------------
-- Normalization
---------------------------------------------------------------------------------------------

-- Builds the normalized kernel table from `given` (key -> raw value). `spec` (may be nil)
-- supplies defaults through each key's `from` path; `fail(key, msg)` reports an error and does
-- not return. Keys are resolved in family order, so a default may depend on earlier keys.
function M.normalize(fam, given, spec, from_text, fail)
  local k = { family = fam.family }
  for name in next, given do
    if M.RETIRED[name] then fail(name, "no longer a key: " .. M.RETIRED[name]) end
    if not fam.key_index[name] then
      local names = {}
      for _, kd in ipairs(fam.keys) do insert(names, kd.key) end
      fail(name, format("unknown key for %s (keys: %s)", fam.family, concat(names, ", ")))
    end
  end
  for _, kd in ipairs(fam.keys) do
    local raw = given[kd.key]
    local text = from_text
    if raw == nil and spec and kd.from then
      -- a path into the spec, or a function of it (a value derived from two model fields,
      -- `from_doc` saying which)
      if type(kd.from) == "function" then raw = kd.from(spec) else raw = get_path(spec, kd.from) end
      text = false
    end
    if raw == nil then
      raw = kd.default
      if type(raw) == "function" then raw = raw(k) end
      text = false
    end
    if raw == nil then fail(kd.key, "missing (no default)") end
    local v, why = coerce(kd, raw, text)
    if v == nil then fail(kd.key, why) end
    k[kd.key] = v
  end
  if fam.check then fam.check(k, function(key, msg) fail(key, msg) end) end
  M.check_sizes(fam, k, fail)
  return k
end

---------------------------------------------------------------------------------------------
-- Sizes formed from the keys
---------------------------------------------------------------------------------------------

-- The value of one dimension of an argument's shape: a number, or a per-call size's name
-- ("rows", "...rows": any leading axes flattened, counted at the key's nominal value).
local function dim_value(k, d)
  if type(d) == "number" then return d end
  return k[match(d, "^%.*(.*)$")]
end

-- Every tensor's bytes (elements at 4 bytes, no dtype is wider) at the nominal per-call sizes
-- must stay within SIZE_MAX. With every key at most DIM_MAX, that bounds what templates form
-- from the same dimensions (offsets, strides, scratch carved from them) below what a C long
-- holds. Products are formed in floats, so they cannot wrap as Lua's integers do. The key
-- named is the kernel's largest integer key: with each key bounded, a product past 2^53 takes
-- at least two large ones, and the largest is the likeliest mistake. Params that are floats
-- must come out finite.
function M.check_sizes(fam, k, fail)
  local big, bigv = nil, -1
  for _, kd in ipairs(fam.keys) do
    if kd.kind == "int" and k[kd.key] > bigv then big, bigv = kd.key, k[kd.key] end
  end
  for _, a in ipairs(fam.args(k)) do
    local n = 4.0
    for _, d in ipairs(a.shape) do
      local v = dim_value(k, d)
      if type(v) == "number" then n = n * v end
    end
    if n > M.SIZE_MAX then
      fail(big or a.name, format("tensor '%s' would hold %.4g bytes at these sizes, above the "
                                 .. "limit of 2^53", a.name, n))
    end
  end
  local params = fam.params and fam.params(k) or {}
  local names = {}
  for name in next, params do names[#names + 1] = name end
  sort(names)
  for _, name in ipairs(names) do
    local v = params[name]
    if mtype(v) == "float" and not (v == v and v ~= math.huge and v ~= -math.huge) then
      fail(name, format("the template value %s formed from the keys is not finite", name))
    end
  end
end

-- "family:key=value,..." with every key in family order: the canonical problem string, which
-- `kgen exec` accepts back.
function M.problem_string(fam, k)
  local parts = {}
  for _, kd in ipairs(fam.keys) do
    insert(parts, kd.key .. "=" .. M.fmt_value(kd, k[kd.key]))
  end
  return fam.family .. ":" .. concat(parts, ",")
end

-- The "key=value" items of the keys whose value is not the family's default for them, in family
-- order. After "family:" they make a problem string that parses back to the same kernel (the
-- parser puts the defaults back), and one a new key with a default does not change.
function M.problem_items_off_default(fam, k)
  local items = {}
  for _, kd in ipairs(fam.keys) do
    local d = kd.default
    if type(d) == "function" then d = d(k) end
    if kd.kind == "float" and d ~= nil then d = to_f32(d) end  -- as normalize rounds values
    local v = M.fmt_value(kd, k[kd.key])
    if d == nil or v ~= M.fmt_value(kd, d) then insert(items, kd.key .. "=" .. v) end
  end
  return items
end

-- Parses "family:key=value,...". Errors (via error()) name the problem string and the key.
function M.parse_problem(str)
  local fname, rest = match(str, "^([%w_]+):(.*)$")
  if not fname then fname, rest = match(str, "^([%w_]+)$"), "" end
  if not fname then
    error(format("problem '%s': expected family:key=value,...", str), 0)
  end
  local fam = M.family(fname)
  if not fam then
    error(format("problem '%s': unknown family '%s' (families: %s)", str, fname,
                 concat(M.FAMILIES, ", ")), 0)
  end
  local given = {}
  for item in gmatch(rest, "[^,]+") do
    local key, val = match(item, "^%s*([%w_]+)%s*=%s*(.-)%s*$")
    if not key then error(format("problem '%s': '%s' is not key=value", str, item), 0) end
    if given[key] ~= nil then error(format("problem '%s': key '%s' given twice", str, key), 0) end
    given[key] = val
  end
  return M.normalize(fam, given, nil, true, function(key, msg)
    error(format("problem '%s': key '%s': %s", str, key, msg), 0)
  end), fam
end

return M
