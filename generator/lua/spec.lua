-- kgen.spec: loads a spec (a Lua file returning a table) in a sandbox, checks every field, and
-- resolves its kernel entries. Errors are one line: "file[:line]: field 'a.b': what is wrong".

local M = {}

local ctypes = require "ctypes"
local kernel = require "kernel"
local format, match, find, gmatch = string.format, string.match, string.find, string.gmatch
local sub = string.sub
local concat, insert, sort = table.concat, table.insert, table.sort
local mtype = math.type

---------------------------------------------------------------------------------------------
-- Schema
---------------------------------------------------------------------------------------------

-- Every integer field has an upper bound at the door (a dimension or a limit beyond 2^31-1 is
-- no model's, and products of such values are what the generator forms sizes from).
local function int(min) return { kind = "int", min = min, max = kernel.DIM_MAX } end
local function num(min) return { kind = "float", min = min } end
local function enum(...) return { kind = "enum", values = { ... } } end

-- Field order here is the order fields are checked and reported in.
local SCHEMA = {
  { "name", { kind = "string", pattern = "^[a-z][a-z0-9_]*$",
              what = "a lower-case identifier ([a-z][a-z0-9_]*)" } },
  { "description", { kind = "string", optional = true } },
  { "model", { kind = "table", fields = {
      { "hidden", int(1) }, { "intermediate", int(1) }, { "q_heads", int(1) },
      { "kv_heads", int(1) }, { "head_dim", int(2) }, { "layers", int(1) },
      { "vocab", int(1) }, { "rms_eps", num(0) }, { "rope_theta", num(0) },
  } } },
  { "dtype", enum("bf16", "fp16", "f32") },
  { "fp8", { kind = "table", fields = {
      { "format", enum("e4m3", "e4m3fn") },
      { "max", { kind = "float", min = 1, optional = true } },
  } } },
  { "limits", { kind = "table", fields = {
      { "max_tokens", int(1) }, { "max_batch", int(1) }, { "max_context", int(1) },
  } } },
  { "codegen", { kind = "table", optional = true, fields = {
      { "max_lines", int(1) },
  } } },
  { "kernels", { kind = "list" } },
}

M.DEFAULT_MAX_LINES = 4000
M.MAX_KERNELS = 4096  -- kernel entries in one spec (the bundled specs have tens)

---------------------------------------------------------------------------------------------
-- Error reporting with a best-effort line number
---------------------------------------------------------------------------------------------

-- The line where `key =` appears, if it appears exactly once in the source; nil otherwise.
local function line_of(src, key, from_line)
  local found, n = nil, 0
  local lineno = 0
  for line in gmatch(src .. "\n", "(.-)\n") do
    lineno = lineno + 1
    if lineno >= (from_line or 1) and find(line, "%f[%w_]" .. key .. "%s*=") then
      n = n + 1
      found = found or lineno
      if from_line then return found end
    end
  end
  if n == 1 then return found end
  return nil
end

-- The line of kernels[i]'s key: the i-th `family =` in the file, then the key after it.
local function kernel_line(src, i, key)
  local lineno, seen = 0, 0
  for line in gmatch(src .. "\n", "(.-)\n") do
    lineno = lineno + 1
    if find(line, "%f[%w_]family%s*=") then
      seen = seen + 1
      if seen == i then
        if key == nil or key == "family" then return lineno end
        return line_of(src, key, lineno) or lineno
      end
    end
  end
  return nil
end

local function where(file, line)
  if line then return format("%s:%d", file, line) end
  return file
end

---------------------------------------------------------------------------------------------
-- Checking
---------------------------------------------------------------------------------------------

local function shown(v)
  if type(v) == "string" then return format("%q", v) end
  if type(v) == "table" then return "a table" end
  return tostring(v)
end

local function check_value(fd, v)
  local k = fd.kind
  if k == "string" then
    if type(v) ~= "string" then return "expected a string, got " .. shown(v) end
    if fd.pattern and not match(v, fd.pattern) then
      return format("expected %s, got %s", fd.what, shown(v))
    end
  elseif k == "int" then
    if mtype(v) ~= "integer" then return "expected an integer, got " .. shown(v) end
    if fd.min and v < fd.min then return format("expected an integer >= %d, got %d", fd.min, v) end
    if fd.max and v > fd.max then return format("expected an integer <= %d, got %d", fd.max, v) end
  elseif k == "float" then
    if type(v) ~= "number" then return "expected a number, got " .. shown(v) end
    -- kernels take float fields as float32: NaN, inf and what rounds to inf are refused here
    if not kernel.finite_f32(v) then
      return "expected a finite number (float32: |x| < 3.4e38), got "
             .. (v ~= v and "NaN" or format("%g", v))
    end
    if fd.min and v < fd.min then
      return format("expected a number >= %s, got %s", kernel.fmt_float(fd.min), shown(v))
    end
  elseif k == "enum" then
    for _, e in ipairs(fd.values) do if v == e then return nil end end
    return format("expected one of %s, got %s", concat(fd.values, ", "), shown(v))
  elseif k == "table" or k == "list" then
    if type(v) ~= "table" then return "expected a table, got " .. shown(v) end
  end
  return nil
end

-- Why list t is not a list 1..n (a hole, or a key that is not an index), or nil. A hole would
-- make ipairs stop early and drop the entries after it without a word.
local function list_misfit(t, path)
  local top = 0
  for key in next, t do
    if mtype(key) ~= "integer" or key < 1 then
      return path, format("expected a list, got a key %s", shown(key))
    end
    if key > top then top = key end
  end
  for i = 1, top do
    if t[i] == nil then
      return format("%s[%d]", path, i),
             format("is missing: a list may not have holes (the highest index is %d)", top)
    end
  end
  return nil
end

local function check_fields(t, fields, prefix, fail)
  local known = {}
  for _, f in ipairs(fields) do
    local name, fd = f[1], f[2]
    known[name] = true
    local path = prefix .. name
    local v = t[name]
    if v == nil then
      if not fd.optional then fail(path, name, "is missing") end
    else
      local why = check_value(fd, v)
      if why then fail(path, name, why) end
      if fd.kind == "table" then check_fields(v, fd.fields, path .. ".", fail) end
    end
  end
  local unknown = {}
  for name in next, t do
    if not known[name] then insert(unknown, tostring(name)) end
  end
  sort(unknown)
  for _, name in ipairs(unknown) do
    local why = prefix == "" and kernel.RETIRED[name]
    if why then fail(name, name, "is no longer a spec field: " .. why) end
  end
  if #unknown > 0 then
    fail(prefix .. unknown[1], unknown[1], "is not a spec field")
  end
end

---------------------------------------------------------------------------------------------
-- Loading
---------------------------------------------------------------------------------------------

-- A spec may compute values (local variables, arithmetic, string.format) but may not read the
-- machine or depend on hash order.
local function sandbox()
  return {
    ipairs = ipairs, tonumber = tonumber, type = type, error = error,
    math = { floor = math.floor, ceil = math.ceil, min = math.min, max = math.max },
    string = { format = format },
    table = { insert = insert, concat = concat },
  }
end

-- Loads spec source `src`; `file` is the name used in messages and the preamble. Returns the
-- spec table with resolved kernels in spec.resolved (each: { fam=, k=, index= }).
function M.load(src, file)
  local chunk, err = load(src, "@" .. file, "t", sandbox())
  if not chunk then
    -- a syntax error names the file; a refused binary chunk or a C stack overflow (a table
    -- nested thousands deep) does not
    if sub(err, 1, #file + 1) ~= file .. ":" then err = file .. ": " .. err end
    error(err, 0)
  end
  local ok, spec = host.run_spec(chunk, file)
  if not ok then error(spec, 0) end
  if type(spec) ~= "table" then
    error(format("%s: a spec must return a table, got %s", file, shown(spec)), 0)
  end
  check_fields(spec, SCHEMA, "", function(path, key, why)
    local sep = match(why, "^is ") and " " or ": "
    error(format("%s: field '%s'%s%s", where(file, line_of(src, key)), path, sep, why), 0)
  end)
  local hole_path, hole_why = list_misfit(spec.kernels, "kernels")
  if hole_path then
    local sep = match(hole_why, "^is ") and " " or ": "
    error(format("%s: field '%s'%s%s", where(file, line_of(src, "kernels")), hole_path, sep,
                 hole_why), 0)
  end
  if #spec.kernels > M.MAX_KERNELS then
    error(format("%s: field 'kernels': %d entries, above the limit of %d",
                 where(file, line_of(src, "kernels")), #spec.kernels, M.MAX_KERNELS), 0)
  end
  local m = spec.model
  if m.q_heads % m.kv_heads ~= 0 then
    error(format("%s: field 'model.q_heads': %d is not a multiple of model.kv_heads (%d)",
                 where(file, line_of(src, "q_heads")), m.q_heads, m.kv_heads), 0)
  end
  if spec.fp8.max == nil then spec.fp8.max = ctypes.FP8[spec.fp8.format].max end
  spec.codegen = spec.codegen or {}
  spec.codegen.max_lines = spec.codegen.max_lines or M.DEFAULT_MAX_LINES
  spec.file = file
  spec.resolved = {}
  for i, entry in ipairs(spec.kernels) do
    local at = function(key) return where(file, kernel_line(src, i, key)) end
    if type(entry) ~= "table" then
      error(format("%s: field 'kernels[%d]': expected a table, got %s", file, i, shown(entry)), 0)
    end
    local fam = type(entry.family) == "string" and kernel.family(entry.family)
    if not fam then
      error(format("%s: field 'kernels[%d].family': expected one of %s, got %s", at("family"),
                   i, concat(kernel.FAMILIES, ", "), shown(entry.family)), 0)
    end
    local given = {}
    for key, v in next, entry do if key ~= "family" then given[key] = v end end
    local k = kernel.normalize(fam, given, spec, false, function(key, msg)
      error(format("%s: field 'kernels[%d].%s' (%s): %s", at(key), i, key, fam.family, msg), 0)
    end)
    insert(spec.resolved, { fam = fam, k = k, index = i })
  end
  return spec
end

return M
