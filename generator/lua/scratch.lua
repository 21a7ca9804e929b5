-- kgen.scratch: a kernel's scratch block laid out once, in floats, by its family's params; the
-- template emits the layout as named offsets (templates/scratch.c.in), one comment per part.

local M = {}

-- parts: list of { name, floats, doc } in order; parts of 0 floats are left out. Each part
-- starts on a multiple of `align` floats (1, or 16 for 64-byte boundaries). Returns
-- { parts = { { name =, off =, n =, doc = } ... }, floats = the total (a multiple of align) }.
function M.layout(parts, align)
  align = align or 1
  local out, off = {}, 0
  for _, p in ipairs(parts) do
    if p[2] > 0 then
      off = (off + align - 1) // align * align
      out[#out + 1] = { name = p[1], off = off, n = p[2], doc = p[3] }
      off = off + p[2]
    end
  end
  return { parts = out, floats = (off + align - 1) // align * align }
end

return M
