-- kgen.f32: float32 values as text. One formatting rule for kernel names, problem strings and
-- C literals: the shortest decimal that reads back as the same float32.

local M = {}

local format, find = string.format, string.find
local pack, unpack = string.pack, string.unpack

-- x rounded to the nearest float32 (as a Lua float).
function M.round(x) return unpack("<f", pack("<f", x)) end

local function exact(s, v) return M.round(tonumber(s)) == v end

-- Shortest decimal for float32 v (already rounded), plain before exponent form when no
-- longer: 240 -> "240", 1e-6 -> "1e-06", 0.5 -> "0.5".
function M.shortest(v)
  local s
  for p = 1, 9 do
    s = format("%." .. p .. "g", v)
    if exact(s, v) then break end
  end
  local a = math.abs(v)
  if find(s, "e", 1, true) and a >= 1e-4 and a < 1e9 then
    for p = 0, 12 do
      local d = format("%." .. p .. "f", v)
      if exact(d, v) then
        if #d <= #s + 2 then s = d end
        break
      end
    end
  end
  return s
end

return M
