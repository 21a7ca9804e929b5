-- kgen.emit: turns resolved kernels into files: one <symbol>.c per kernel (preamble, template
-- body, uniform entry point), kernels.inc (the AOT build's X-macro) and manifest.json (what
-- tools read: arguments, shapes, per-call sizes, costs). Pure function of
-- (spec source, templates, generator version): no dates, paths or hash-order iteration.

local M = {}

local template = require "template"
local naming = require "naming"
local kernel = require "kernel"
local signature = require "signature"
local format, rep, gsub, gmatch = string.format, string.rep, string.gsub, string.gmatch
local concat, insert = table.concat, table.insert

local host = host -- provided by the C side: version, sha256(s), template(name)

---------------------------------------------------------------------------------------------
-- Arguments and signatures
---------------------------------------------------------------------------------------------

-- The C parameter list: tensors in the family's order (outputs first), then per-call sizes, one
-- to a line so that a new argument is a one-line diff. Templates write `int ${NAME}(${PARAMS})`:
-- the list starts on the line after the opening parenthesis and ends at the closing one.
local function params_c(rec)
  local ps = {}
  for _, a in ipairs(rec.args) do
    insert(ps, signature.c_type(a, true) .. a.name)
  end
  for _, c in ipairs(rec.calls) do insert(ps, "long " .. c) end
  return "\n    " .. concat(ps, ",\n    ")
end

-- The parameters' names in order, for a template that passes them all on (`check_call(${ARGS})`):
-- on continuation lines of at most 96 columns.
local function args_c(rec)
  local as = {}
  for _, a in ipairs(rec.args) do insert(as, a.name) end
  for _, c in ipairs(rec.calls) do insert(as, c) end
  local lines, line = {}, ""
  for i, a in ipairs(as) do
    local piece = a .. (i < #as and "," or "")
    if line ~= "" and 8 + #line + 1 + #piece > 96 then
      insert(lines, line)
      line = piece
    else
      line = line == "" and piece or line .. " " .. piece
    end
  end
  insert(lines, line)
  return "\n        " .. concat(lines, "\n        ")
end

-- The uniform entry point that tools (exec, run, tests, bench) call: same kernel, arguments
-- from arrays in signature order, one to a line like the signature's.
local function entry_point(rec)
  local as = {}
  for i = 1, #rec.args do insert(as, format("t[%d]", i - 1)) end
  for i = 1, #rec.calls do insert(as, format("n[%d]", i - 1)) end
  return concat({
    "",
    "/* Uniform entry point for tools: tensors t[] in signature order, per-call sizes n[]. */",
    format("int %s__v(", rec.name),
    "    void *const *t,",
    "    const long *n)",
    "{",
    format("    return %s(", rec.name),
    "        " .. concat(as, ",\n        ") .. ");",
    "}",
    "",
  }, "\n")
end

---------------------------------------------------------------------------------------------
-- Kernel records
---------------------------------------------------------------------------------------------

-- The per-call sizes of a call at `tokens` tokens: batch axes 1, seq axes tokens, the other
-- sizes nominal (a size that is not a token axis keeps its nominal value).
local function sizes_at(rec, tokens)
  local n = {}
  for _, c in ipairs(rec.calls) do
    local axis = rec.tokens[c]
    n[c] = axis == "batch" and 1 or axis == "seq" and tokens or rec.nominal[c]
  end
  return n
end

-- The cost block as a function of the tokens of a call: for each of flops, read, written the
-- exact coefficients {c0, c1, c2} of c0 + c1 T + c2 T^2 (degree 2, so attention's quadratic
-- cost fits), fitted at T = 1, 2, 3 and checked at further points. Doubled coefficients are
-- integers (a quadratic through integers at 1, 2, 3), so the fit and the checks are exact.
local FIT_CHECKS = { 4, 5, 8, 13, 64, 1000 }
local COST_FIELDS = { "flops", "read", "written" }

local function half(d)
  if math.abs(d) >= 2^53 then error(format("cost coefficient %d is past exact doubles", d), 0) end
  return d % 2 == 0 and d // 2 or d / 2
end

local function cost_polynomial(rec, where)
  local f = {}
  for t = 1, 3 do f[t] = rec.fam.cost(rec.k, sizes_at(rec, t)) end
  local poly = {}
  for _, field in ipairs(COST_FIELDS) do
    local y1, y2, y3 = f[1][field], f[2][field], f[3][field]
    local d2 = y1 - 2 * y2 + y3            -- 2 c2
    local d1 = 2 * (y2 - y1) - 3 * d2      -- 2 c1
    local d0 = 2 * y1 - d1 - d2            -- 2 c0
    for _, t in ipairs(FIT_CHECKS) do
      local want = rec.fam.cost(rec.k, sizes_at(rec, t))[field]
      if math.type(want) ~= "integer" or 2 * want ~= d0 + d1 * t + d2 * t * t then
        error(format("%s: kernel %s: the %s family's cost (%s) is not a polynomial of degree "
                     .. "<= 2 in the tokens of a call (F.tokens): at %d tokens it is %s, the "
                     .. "fit through 1, 2, 3 tokens gives %s", where, rec.name, rec.family,
                     field, t, tostring(want), format("%.17g", (d0 + d1 * t + d2 * t * t) / 2)),
              0)
      end
    end
    poly[field] = { half(d0), half(d1), half(d2) }
  end
  return poly
end

-- Everything known about one kernel before its text is rendered. `where` locates it in error
-- messages (the spec entry or the problem string).
function M.record(fam, k, where)
  local rec = { fam = fam, k = k, family = fam.family }
  rec.name = naming.name(fam, k)
  rec.problem = kernel.problem_string(fam, k)
  rec.args = fam.args(k)
  signature.check(fam, rec.args, rec.name, where)
  rec.calls = fam.calls
  rec.tokens = fam.tokens or {}
  rec.nominal = {}
  for _, c in ipairs(fam.calls) do rec.nominal[c] = k[c] end  -- a per-call size's key is its nominal value
  rec.cost = fam.cost(k, rec.nominal)
  rec.cost_tokens = cost_polynomial(rec, where)
  rec.template = fam.template
  return rec
end

-- The preamble's problem: the keys away from the family's defaults, one to a line, so a key
-- added with a default leaves the preamble alone and a changed option is a one- or two-line
-- diff (kernels.inc and manifest.json carry the full canonical string). Joined, the lines are
-- a problem string that `kgen exec` takes and that names this same kernel.
local function problem_lines(rec)
  local items = kernel.problem_items_off_default(rec.fam, rec.k)
  local lines = {
    " * problem: the keys away from the family's defaults (kernels.inc has them all):",
  }
  if #items == 0 then insert(lines, " *   " .. rec.family); return lines end
  for i, item in ipairs(items) do
    insert(lines, format(" *   %s%s%s", i == 1 and rec.family .. ":" or "", item,
                         i < #items and "," or ""))
  end
  return lines
end

local function preamble(rec, ctx)
  local c = rec.cost
  local lines = {
    format("/* %s.c", rec.name),
    " *",
    " * Generated by kgen " .. host.version .. "; do not edit: change the spec or the template.",
    " * template: templates/" .. rec.template,
    " * spec:     " .. ctx.source,
  }
  for _, l in ipairs(problem_lines(rec)) do insert(lines, l) end
  local nominal = {}
  for _, cname in ipairs(rec.calls) do insert(nominal, cname .. "=" .. rec.nominal[cname]) end
  insert(lines, " *")
  insert(lines, " * cost per call at " .. concat(nominal, ", ") .. ":")
  insert(lines, format(" *   flops %d, bytes read %d, bytes written %d",
                       c.flops, c.read, c.written))
  insert(lines, " */")
  insert(lines, "#ifndef KGEN_ABI_H /* the JIT supplies kgen/abi.h itself */")
  insert(lines, "#include \"kgen/abi.h\"")
  insert(lines, "#endif")
  insert(lines, "")
  return concat(lines, "\n") .. "\n"
end

-- Renders one kernel's .c text. `ctx.source` names the spec (or problem string) in the
-- preamble; `ctx.max_lines` is the code-size budget and `ctx.budget_field` where it is set.
-- The spec's hash is manifest.json's alone: in every file, a one-key change would rewrite
-- every kernel of the spec.
function M.render(rec, ctx)
  local params = rec.fam.params(rec.k)
  params.NAME = rec.name
  params.PARAMS = params_c(rec)
  params.ARGS = args_c(rec)
  local ok, body = pcall(template.render, rec.template, params, host.template, "templates/")
  if not ok then error(ctx.where .. ": " .. body, 0) end
  local text = preamble(rec, ctx) .. body .. entry_point(rec)
  local n = select(2, gsub(text, "\n", "\n"))
  if n > ctx.max_lines then
    error(format("%s: kernel %s is %d lines of C, over the code-size budget of %d (%s); "
                 .. "raise the budget or choose smaller unrolled dimensions",
                 ctx.where, rec.name, n, ctx.max_lines, ctx.budget_field), 0)
  end
  return text
end

---------------------------------------------------------------------------------------------
-- kernels.inc and manifest.json
---------------------------------------------------------------------------------------------

local function kernels_inc(spec_name, recs)
  local out = {
    format("/* kernels.inc: the kernels of spec %s as an X-macro, for the AOT build's C",
           spec_name),
    " * (declarations and registration); tools read manifest.json.",
    " * Generated by kgen " .. host.version .. "; do not edit.",
    " * KG_KERNEL(family, symbol, problem string, flops, bytes read, bytes written per call) */",
  }
  for _, r in ipairs(recs) do
    insert(out, format('KG_KERNEL(%s, %s, "%s", %d, %d, %d)', r.family, r.name, r.problem,
                       r.cost.flops, r.cost.read, r.cost.written))
  end
  return concat(out, "\n") .. "\n"
end

-- A small JSON writer: fixed key order given by the caller, so output is deterministic.
local NULL = setmetatable({}, { __name = "null" })

local function jstr(s) return '"' .. gsub(s, '[%c"\\]', function(c)
  return format("\\u%04x", string.byte(c)) end) .. '"' end

-- Integers as integers; the only other numbers written are cost coefficients, halves.
local function jnum(v)
  if math.type(v) == "integer" then return format("%d", v) end
  if v == math.floor(v) then return format("%d", math.tointeger(v)) end
  return format("%.1f", v)
end

local function jval(v, ind)
  local t = type(v)
  if v == NULL then return "null" end
  if t == "string" then return jstr(v) end
  if t == "number" then return jnum(v) end
  if t == "boolean" then return v and "true" or "false" end
  local pad, pad2 = rep("  ", ind), rep("  ", ind + 1)
  if v.__keys then
    local parts = {}
    for _, key in ipairs(v.__keys) do
      insert(parts, pad2 .. jstr(key) .. ": " .. jval(v[key], ind + 1))
    end
    if #parts == 0 then return "{}" end
    return "{\n" .. concat(parts, ",\n") .. "\n" .. pad .. "}"
  end
  local parts, flat = {}, true
  for _, x in ipairs(v) do if type(x) == "table" then flat = false end end
  if flat then
    for i, x in ipairs(v) do parts[i] = jval(x, 0) end
    return "[" .. concat(parts, ", ") .. "]"
  end
  for _, x in ipairs(v) do insert(parts, pad2 .. jval(x, ind + 1)) end
  if #parts == 0 then return "[]" end
  return "[\n" .. concat(parts, ",\n") .. "\n" .. pad .. "]"
end

local function obj(keys, t) t.__keys = keys; return t end

-- A list argument's elements (F.args `list = key`: k[key] of them; `list = { key, key2 }`:
-- their product, element (i, j) at i * k[key2] + j): { count, given (mask of the
-- elements given; the others are NULL), alt_dtype, alt (mask of the elements stored in
-- alt_dtype instead of the argument's dtype) }, or nil for a plain argument.
function M.list_info(a, k)
  if not a.list then return nil end
  local n = 1
  for _, key in ipairs(type(a.list) == "table" and a.list or { a.list }) do n = n * k[key] end
  local all = (1 << n) - 1
  return { count = n, given = a.list_mask or all,
           alt_dtype = a.list_alt and a.list_alt.dtype or a.dtype,
           alt = a.list_alt and a.list_alt.mask or 0 }
end

-- One argument: shape symbolic as F.args gives it (numbers, per-call size names, "...rows":
-- any leading axes flattened into rows), and what a tool needs to make and fill its buffer.
local function manifest_arg(a, k)
  local shape = {}
  for _, d in ipairs(a.shape) do insert(shape, d) end
  local arg = obj({ "name", "dir", "dtype", "shape", "used", "scalar", "first_row", "init" }, {
    name = a.name, dir = a.dir, dtype = a.dtype, shape = shape, used = a.used ~= false,
    scalar = a.scalar or false, first_row = a.first_row or false, init = a.init or "normal",
  })
  if a.weight then
    insert(arg.__keys, "weight")
    arg.weight = obj({ "layout", "mx" }, { layout = a.weight.layout, mx = a.weight.mx or false })
  end
  local li = M.list_info(a, k)
  if li then
    insert(arg.__keys, "list")
    arg.list = obj({ "count", "given", "alt_dtype", "alt" }, li)
  end
  return arg
end

-- One kernel: identity, per-call sizes (nominal value, token axis), arguments, the cost block
-- at the nominal sizes and as a polynomial in the tokens of a call.
function M.manifest_kernel(r)
  local calls, args = {}, {}
  for _, c in ipairs(r.calls) do
    insert(calls, obj({ "name", "nominal", "tokens" },
                      { name = c, nominal = r.nominal[c], tokens = r.tokens[c] or NULL }))
  end
  for _, a in ipairs(r.args) do insert(args, manifest_arg(a, r.k)) end
  local p = r.cost_tokens
  return obj({ "symbol", "family", "problem", "file", "template", "calls", "args", "cost",
               "cost_tokens" }, {
    symbol = r.name, family = r.family, problem = r.problem, file = r.name .. ".c",
    template = "templates/" .. r.template, calls = calls, args = args,
    cost = obj({ "flops", "bytes_read", "bytes_written" },
               { flops = r.cost.flops, bytes_read = r.cost.read, bytes_written = r.cost.written }),
    cost_tokens = obj({ "flops", "bytes_read", "bytes_written" },
                      { flops = p.flops, bytes_read = p.read, bytes_written = p.written }),
  })
end

local function manifest(spec, recs, hash)
  local ks = {}
  for _, r in ipairs(recs) do insert(ks, M.manifest_kernel(r)) end
  return M.json(obj({ "spec", "spec_file", "spec_sha256", "generator", "kernels" }, {
    spec = spec.name, spec_file = spec.display, spec_sha256 = hash,
    generator = "kgen " .. host.version, kernels = ks,
  }))
end

-- A manifest-shaped document as JSON text (kgen's own writer: fixed key order).
function M.json(doc) return jval(doc, 0) .. "\n" end
M.obj = obj

---------------------------------------------------------------------------------------------
-- A whole spec
---------------------------------------------------------------------------------------------

-- The records of a loaded spec, checked for duplicate names.
function M.records(spec)
  local recs, seen = {}, {}
  for _, r in ipairs(spec.resolved) do
    local rec = M.record(r.fam, r.k, format("%s: kernels[%d]", spec.file, r.index))
    rec.index = r.index
    if seen[rec.name] then
      error(format("%s: kernels[%d] and kernels[%d] are the same kernel %s", spec.file,
                   seen[rec.name], r.index, rec.name), 0)
    end
    seen[rec.name] = r.index
    insert(recs, rec)
  end
  return recs
end

-- Every file of a spec: a list of { name = file name, text = content }, in a fixed order.
function M.files(spec, src)
  local hash = host.sha256(src)
  local recs = M.records(spec)
  local files = {}
  local ctx = {
    source = spec.display,
    max_lines = spec.codegen.max_lines,
    budget_field = "field codegen.max_lines",
  }
  for _, rec in ipairs(recs) do
    ctx.where = format("%s: kernels[%d]", spec.file, rec.index)
    insert(files, { name = rec.name .. ".c", text = M.render(rec, ctx) })
  end
  insert(files, { name = "kernels.inc", text = kernels_inc(spec.name, recs) })
  insert(files, { name = "manifest.json", text = manifest(spec, recs, hash) })
  return files, recs
end

return M
