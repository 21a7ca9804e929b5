-- kgen.main: the generator's entry points for the C host. Each takes and returns plain data
-- (strings, numbers, lists of tables); errors are raised as one-line messages.

local M = {}

local spec_mod = require "spec"
local emit = require "emit"
local kernel = require "kernel"
local naming = require "naming"
local format, match, rep = string.format, string.match, string.rep
local concat, insert = table.concat, table.insert

---------------------------------------------------------------------------------------------
-- Specs
---------------------------------------------------------------------------------------------

local function load_spec(src, file, display)
  local spec = spec_mod.load(src, file)
  spec.display = display
  return spec
end

-- Every file of a spec: { name=, text= } in a fixed order, and the spec's name.
function M.generate(src, file, display)
  local spec = load_spec(src, file, display)
  local files = emit.files(spec, src)
  return files, spec.name
end

-- A plain view of a record for the host (what exec needs of a problem string's kernel).
local function view(rec, text)
  local args = {}
  for _, a in ipairs(rec.args) do
    local shape = {}
    for i, d in ipairs(a.shape) do
      if type(d) == "string" then d = rec.nominal[match(d, "^%.*(.*)$")] end
      shape[i] = d
    end
    local li = emit.list_info(a, rec.k) or { count = 0, given = 0, alt_dtype = a.dtype, alt = 0 }
    insert(args, { name = a.name, dir = a.dir, dtype = a.dtype, shape = shape,
                   used = a.used ~= false, scalar = a.scalar or a.first_row or false,
                   init = a.init or "normal",
                   weight_layout = a.weight and a.weight.layout or nil,
                   weight_mx = a.weight and a.weight.mx or false,
                   list = li.count, list_given = li.given, list_alt = li.alt,
                   alt_dtype = li.alt_dtype })
  end
  local nominal = {}
  for i, c in ipairs(rec.calls) do nominal[i] = rec.nominal[c] end
  return { name = rec.name, family = rec.family, problem = rec.problem, text = text,
           flops = rec.cost.flops, read = rec.cost.read, written = rec.cost.written,
           args = args, calls = rec.calls, nominal = nominal }
end

---------------------------------------------------------------------------------------------
-- One-line problems
---------------------------------------------------------------------------------------------

-- One kernel from "family:key=value,...": its view, with text rendered for the JIT/gcc.
function M.problem(str)
  local k, fam = kernel.parse_problem(str)
  local rec = emit.record(fam, k, "problem '" .. str .. "'")
  local text = emit.render(rec, {
    source = "none: a problem string (kgen exec)",
    max_lines = spec_mod.DEFAULT_MAX_LINES, budget_field = "the default budget",
    where = "problem '" .. str .. "'",
  })
  return view(rec, text)
end

-- The name's keys as "family:key=value,..." (only the keys a name spells), for round trips.
function M.parse_name(name)
  local fname, values = naming.parse(name)
  if not fname then error(format("kernel name '%s': %s", name, values), 0) end
  local fam = kernel.family(fname)
  local parts = {}
  for _, kd in ipairs(fam.keys) do
    if values[kd.key] ~= nil then
      insert(parts, kd.key .. "=" .. kernel.fmt_value(kd, values[kd.key]))
    end
  end
  return fname .. ":" .. concat(parts, ",")
end

-- The keys of a canonical problem string that its kernel's name spells (see parse_name).
function M.named_keys(str)
  local k, fam = kernel.parse_problem(str)
  local parts = {}
  for _, kd in ipairs(fam.keys) do
    if kd.name then insert(parts, kd.key .. "=" .. kernel.fmt_value(kd, k[kd.key])) end
  end
  return fam.family .. ":" .. concat(parts, ",")
end

---------------------------------------------------------------------------------------------
-- Binding given tensors to a kernel's arguments
---------------------------------------------------------------------------------------------

local function shape_str(s)
  local p = {}
  for i, d in ipairs(s) do p[i] = tostring(d) end
  return "[" .. concat(p, ", ") .. "]"
end

-- Matches given input shapes (name -> list of ints) against the kernel's arguments. Returns
-- the per-call sizes (in call order) and every argument's shape, or raises a message naming
-- the input that does not fit.
function M.bind(str, given)
  local k, fam = kernel.parse_problem(str)
  local args = fam.args(k)
  local val, lead = {}, {}
  local function bind_sym(sym, v, who)
    if val[sym] ~= nil and val[sym] ~= v then
      error(format("input '%s': %s would be %d, but another input makes it %d", who, sym, v,
                   val[sym]), 0)
    end
    val[sym] = v
  end
  local known = {}
  for _, a in ipairs(args) do
    if a.dir ~= "out" and a.used ~= false then
      known[a.name] = true
      local s = given[a.name]
      local want = shape_str(a.shape)
      if not s and a.list then
        error(format("input '%s_0' is missing (list %s: one %s %s a layer, %s_0, %s_1, ...)",
                     a.name, a.name, a.dtype, want, a.name, a.name), 0)
      end
      if not s then error(format("input '%s' is missing (expected %s %s)", a.name, a.dtype, want), 0) end
      local bad = format("input '%s' has shape %s, expected %s", a.name, shape_str(s), want)
      local first = a.shape[1]
      if a.scalar then
        local n = 1
        for _, d in ipairs(s) do n = n * d end
        if n < 1 then error(bad .. " (at least one element)", 0) end
      elseif a.first_row then
        -- rows identical (the reference's [128, N] scales): any leading axes, row 0 is read
        local last = a.shape[#a.shape]
        if #s < 1 or s[#s] ~= last then error(bad .. " (any leading axes; row 0 is read)", 0) end
      elseif type(first) == "string" and match(first, "^%.%.%.") then
        local sym = match(first, "^%.%.%.(.*)$")
        local nfixed = #a.shape - 1
        if #s < nfixed then error(bad, 0) end
        local prod, axes = 1, {}
        for i = 1, #s - nfixed do prod = prod * s[i]; insert(axes, s[i]) end
        for i = 1, nfixed do
          local w, g = a.shape[i + 1], s[#s - nfixed + i]
          if type(w) == "number" then if w ~= g then error(bad, 0) end
          else bind_sym(w, g, a.name) end
        end
        bind_sym(sym, prod, a.name)
        lead[sym] = lead[sym] or axes
      else
        local off = 0
        while #s - off > #a.shape and s[off + 1] == 1 do off = off + 1 end
        if #s - off ~= #a.shape then error(bad, 0) end
        for i, w in ipairs(a.shape) do
          local g = s[i + off]
          if type(w) == "number" then if w ~= g then error(bad, 0) end
          else bind_sym(w, g, a.name) end
        end
      end
    end
  end
  for name in next, given do
    if not known[name] then
      local names = {}
      for _, a in ipairs(args) do if a.dir ~= "out" and a.used ~= false then insert(names, a.name) end end
      error(format("input '%s' is not an input of this kernel (inputs: %s)", name,
                   concat(names, ", ")), 0)
    end
  end
  -- a per-call size no used input mentions (qkv's cache_len without a KV cache) is 0: nothing
  -- the kernel reads depends on it
  local n = {}
  for i, c in ipairs(fam.calls) do
    if val[c] == nil then val[c] = 0 end
    n[i] = val[c]
  end
  if fam.call_check then
    local why = fam.call_check(k, val)
    if why then error(why, 0) end
  end
  local shapes = {}
  for _, a in ipairs(args) do
    local s = {}
    for _, d in ipairs(a.shape) do
      if type(d) == "number" then insert(s, d)
      elseif match(d, "^%.%.%.") then
        for _, x in ipairs(lead[match(d, "^%.%.%.(.*)$")] or {}) do insert(s, x) end
      else insert(s, val[d]) end
    end
    local li = emit.list_info(a, k) or { count = 0, given = 0, alt_dtype = a.dtype, alt = 0 }
    insert(shapes, { name = a.name, dir = a.dir, dtype = a.dtype, shape = s,
                     used = a.used ~= false, scalar = a.scalar or a.first_row or false,
                     weight_layout = a.weight and a.weight.layout or nil,
                     weight_mx = a.weight and a.weight.mx or false,
                     list = li.count, list_given = li.given, list_alt = li.alt,
                     alt_dtype = li.alt_dtype })
  end
  return n, shapes
end

---------------------------------------------------------------------------------------------
-- Describing a family
---------------------------------------------------------------------------------------------

function M.describe(fname)
  local fam = kernel.family(fname)
  if not fam then
    error(format("unknown family '%s' (families: %s)", fname, concat(kernel.FAMILIES, ", ")), 0)
  end
  local k = kernel.normalize(fam, {}, nil, false, function(key, msg) error(key .. ": " .. msg, 0) end)
  local out = { fam.family .. ": " .. fam.doc, "", "keys (value at default; spec field that sets it):" }
  for _, kd in ipairs(fam.keys) do
    local range = kd.kind == "enum" and ("{" .. concat(kd.values, "|") .. "}") or kd.kind
    if kd.kind == "bool" then range = "bool" end
    local from = kd.from and ("; spec " .. (kd.from_doc or kd.from)) or ""
    insert(out, format("  %-18s %-10s %-24s %s%s", kd.key, kernel.fmt_value(kd, k[kd.key]),
                       range, kd.doc or "", from))
  end
  local function list(dir, title)
    local any = false
    for _, a in ipairs(fam.args(k)) do any = any or a.dir == dir end
    if not any then return end
    insert(out, "")
    insert(out, title)
    for _, a in ipairs(fam.args(k)) do
      if a.dir == dir then
        local p = {}
        for i, d in ipairs(a.shape) do p[i] = tostring(d) end
        local note = a.used == false and "  (unused at these defaults)" or ""
        if a.scalar then note = note .. "  (element 0 is read; any shape)" end
        if a.first_row then note = note .. "  (rows identical: any leading axes, row 0 read)" end
        local li = emit.list_info(a, k)
        if li then
          note = note .. format("  (a list of %d: --in %s_0 .. %s_%d)", li.count, a.name, a.name,
                                li.count - 1)
        end
        if a.weight then
          note = note .. format("  (packed weight [K, N], stored %s%s)", a.weight.layout,
                                a.weight.mx and ", MX scales" or "")
        end
        insert(out, format("  %-20s %-16s [%s]%s", a.name, a.dtype, concat(p, ", "), note))
      end
    end
  end
  list("in", "inputs (at the defaults):")
  list("inout", "updated in place:")
  list("out", "outputs:")
  insert(out, "")
  insert(out, "per-call sizes (taken from the inputs' shapes): " .. concat(fam.calls, ", "))
  insert(out, "'...rows' means any leading axes, flattened into rows.")
  return concat(out, "\n") .. "\n"
end

-- The chain of single-op kernels a megakernel's problem equals (its family's F.chain), as
-- lines "CALLS PROBLEM": each stage's kernel, called CALLS times in a row, stages in order; ""
-- for a family without one.
function M.chain(str)
  local k, fam = kernel.parse_problem(str)
  if not fam.chain then return "" end
  local lines = {}
  for _, st in ipairs(fam.chain(k)) do insert(lines, format("%d %s", st.calls, st.problem)) end
  return concat(lines, "\n") .. "\n"
end

function M.families() return kernel.FAMILIES end

-- The text of runtime/include/kgen/kernels.h, derived from the family descriptors.
function M.header() return require("signature").header() end

-- Renders template text with parameters given as a Lua table constructor (for the template
-- engine's tests); partials resolve to the bundled templates.
function M.render_text(name, text, params_src)
  local params = assert(load("return " .. params_src, "=params", "t", {}))()
  return require("template").render(name, params, function(n)
    if n == name then return text end
    return host.template(n)
  end)
end

return M
