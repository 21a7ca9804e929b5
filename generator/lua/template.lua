-- kgen.template: XNNPACK-xngen-style templates, translated to Lua and run in a sandbox.
-- A template line becomes exactly one Lua line, so every error names template:line.

local M = {}

local f32fmt = require "f32"

local concat, insert = table.concat, table.insert
local format, rep, find, sub, match = string.format, string.rep, string.find, string.sub,
                                      string.match
local mtype = math.type
local pack, unpack = string.pack, string.unpack
local gethook, sethook, getinfo = debug.gethook, debug.sethook, debug.getinfo

---------------------------------------------------------------------------------------------
-- Values in generated text
---------------------------------------------------------------------------------------------

-- ${} accepts strings and integers only: a float printed by tostring is neither exact nor
-- reviewable, so floats must go through f32().
local function subst(v)
  local t = type(v)
  if t == "string" then return v end
  if mtype(v) == "integer" then return format("%d", v) end
  if t == "number" then
    error(format("${} takes strings and integers; got the float %s (use f32(x), or // for "
                 .. "integer division)", format("%.17g", v)), 2)
  end
  error(format("${} takes strings and integers; got a %s", t), 2)
end

-- The shortest decimal that reads back as the same float32, as a C literal ("0.5f", "1e-06f").
-- Rounds x to float32 first: a spec's 1e-6 becomes the float the kernel will really use.
function M.f32(x)
  if type(x) ~= "number" then error(format("f32() takes a number, got a %s", type(x)), 2) end
  local v = unpack("<f", pack("<f", x))
  if v ~= v or v == math.huge or v == -math.huge then
    error(format("f32(): %s is not a finite float32", format("%.17g", x)), 2)
  end
  local s = f32fmt.shortest(v)
  if not find(s, "[%.e]") then s = s .. ".0" end
  return s .. "f"
end

---------------------------------------------------------------------------------------------
-- Translation: template text -> Lua source, line for line
---------------------------------------------------------------------------------------------

local OPENERS = { ["for"] = true, ["while"] = true, ["if"] = true, ["function"] = true,
                  ["repeat"] = true }
local MIDDLES = { ["else"] = true, ["elseif"] = true }
local CLOSERS = { ["end"] = true, ["until"] = true }

local function indent_of(line) return #match(line, "^[ \t]*") end

-- Splits a text line into Lua expressions: string pieces and ${expr} substitutions.
local function text_parts(s, name, lineno)
  local parts, pos = {}, 1
  while true do
    local a = find(s, "${", pos, true)
    if not a then break end
    if a > pos then insert(parts, format("%q", sub(s, pos, a - 1))) end
    local depth, i = 1, a + 2
    while i <= #s and depth > 0 do
      local c = sub(s, i, i)
      if c == "{" then depth = depth + 1 elseif c == "}" then depth = depth - 1 end
      i = i + 1
    end
    if depth > 0 then error(format("%s:%d: unclosed ${", name, lineno), 0) end
    local expr = sub(s, a + 2, i - 2)
    if match(expr, "^%s*$") then error(format("%s:%d: empty ${}", name, lineno), 0) end
    insert(parts, "_s(" .. expr .. ")")
    pos = i
  end
  if pos <= #s then insert(parts, format("%q", sub(s, pos))) end
  return parts
end

-- Translates a template to Lua source with one Lua line per template line. Indentation that a
-- `$` block adds (its first inner line's indent beyond the control line's) is removed from the
-- text inside it, so the C reads as if the block were not there.
function M.translate(text, name)
  local out, blocks, pending = {}, {}, nil
  local lineno = 0
  for line in (text .. (sub(text, -1) == "\n" and "" or "\n")):gmatch("(.-)\n") do
    lineno = lineno + 1
    local ind = indent_of(line)
    local body = sub(line, ind + 1)
    local is_ctrl = sub(body, 1, 1) == "$" and sub(body, 2, 2) ~= "{"
    if pending and body ~= "" then
      pending.delta = math.max(ind - pending.indent, 0)
      pending = nil
    end
    if is_ctrl then
      local code = sub(body, 2)
      local word = match(code, "^%s*([%a_]+)")
      if CLOSERS[word] or MIDDLES[word] then
        if #blocks == 0 then
          error(format("%s:%d: '$%s' without an open block", name, lineno, word), 0)
        end
        if CLOSERS[word] then blocks[#blocks] = nil end
      end
      if OPENERS[word] and not match(code, "[%s;]end%s*$") then
        insert(blocks, { indent = ind, delta = 0, line = lineno, word = word })
        pending = blocks[#blocks]
      elseif MIDDLES[word] then
        pending = blocks[#blocks]
      end
      out[lineno] = code
    else
      local strip = 0
      for i = 1, #blocks do strip = strip + blocks[i].delta end
      local keep = body == "" and "" or rep(" ", math.max(ind - strip, 0)) .. body
      local parts = text_parts(keep, name, lineno)
      insert(parts, '"\\n"')
      out[lineno] = "_o(" .. concat(parts, ", ") .. ")"
    end
  end
  if #blocks > 0 then
    local b = blocks[#blocks]
    error(format("%s:%d: '$%s' is not closed with '$end'", name, b.line, b.word), 0)
  end
  return concat(out, "\n")
end

---------------------------------------------------------------------------------------------
-- Running: sandboxed environment, assert, partials
---------------------------------------------------------------------------------------------

-- What a template may use besides its parameters: nothing that reads the machine, the clock or
-- a random source, and no pairs/next (Lua 5.4 hash order differs from run to run).
local SAFE = {
  ipairs = ipairs, tonumber = tonumber, type = type, select = select, error = error,
  math = { floor = math.floor, ceil = math.ceil, min = math.min, max = math.max,
           abs = math.abs, tointeger = math.tointeger, type = math.type, huge = math.huge },
  string = { format = format, rep = rep, sub = sub, upper = string.upper, lower = string.lower,
             byte = string.byte, char = string.char, len = string.len },
  table = { concat = concat, insert = insert, unpack = table.unpack },
}

-- Compiles a template against environment `env` (Lua syntax errors come out as template:line).
function M.compile(text, name, env)
  local src = M.translate(text, name)
  local fn, err = load(src, "@" .. name, "t", env)
  if not fn then error(err, 0) end
  return fn
end

M.MAX_INCLUDE_DEPTH = 8

-- A template is a program, and a loop in it that never ends must end the render with its
-- template:line rather than hang the generator. The budget counts the Lua VM instructions of
-- one whole render (the helpers it calls included); a bundled kernel needs under 20000.
M.BUDGET = 10000000

-- The error of a render past its budget, at the innermost template line running (the hook
-- may fire inside a helper such as f32); `chunks` holds the names the render compiled.
local function over_budget(chunks)
  local at = ""
  for level = 3, 250 do
    local info = getinfo(level, "Sl")
    if not info then break end
    if chunks[info.source] then
      at = format("%s:%d: ", sub(info.source, 2), info.currentline)
      break
    end
  end
  error(format("%sthe template ran past its budget of %d Lua instructions (an endless loop?)",
               at, M.BUDGET), 0)
end

local function run_bounded(fn, chunks)
  local hook, mask, count = gethook()
  sethook(function() over_budget(chunks) end, "", M.BUDGET)
  local ok, err = pcall(fn)
  -- a hook set from C reads back as the string "external hook" and cannot be set again
  if type(hook) == "function" then sethook(hook, mask, count) else sethook() end
  if not ok then error(err, 0) end
end

-- Renders template `name` (its text from loader(name)) with the parameters `params`, a table
-- of plain data. Returns the text; errors are "template:line: message" strings.
-- `prefix` (optional) goes before template names in messages, e.g. "templates/".
function M.render(name, params, loader, prefix)
  prefix = prefix or ""
  local buf, env = {}, nil
  -- a partial that includes itself (directly or not) would recurse until Lua's stack runs out,
  -- minutes later: a real template nests partials one or two deep
  local depth, chunks = 0, { ["@" .. prefix .. name] = true }
  -- A partial runs in the includer's environment, or with `sub` (a table of plain data) in a
  -- fresh one holding only sub's parameters: one template can then instantiate another
  -- family's code (a megakernel's attention and MLP) under that family's own parameters.
  local function environment(vars)
    local e = {}
    for k, v in next, SAFE do e[k] = v end
    for k, v in next, vars do e[k] = v end
    e._o = function(...)
      for i = 1, select("#", ...) do buf[#buf + 1] = select(i, ...) end
    end
    e._s = subst
    e.f32 = M.f32
    e.assert = function(cond, msg)
      if not cond then error(msg or "assertion failed", 2) end
      return cond
    end
    e.include = function(pname, sub)
      if depth >= M.MAX_INCLUDE_DEPTH then
        error(format("include('%s'): partials nested more than %d deep (one includes itself?)",
                     tostring(pname), M.MAX_INCLUDE_DEPTH), 2)
      end
      if sub ~= nil and type(sub) ~= "table" then
        error(format("include('%s', params): params must be a table", tostring(pname)), 2)
      end
      depth = depth + 1
      chunks["@" .. prefix .. tostring(pname)] = true
      M.compile(loader(pname), prefix .. pname, sub and environment(sub) or e)()
      depth = depth - 1
    end
    return e
  end
  env = environment(params)
  run_bounded(M.compile(loader(name), prefix .. name, env), chunks)
  return concat(buf)
end

return M
