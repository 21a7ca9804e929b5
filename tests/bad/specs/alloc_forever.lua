-- BAD: a table per index up to 1e9 (the budget or the memory limit stops it)
local t = {}
for i = 1, 1e9 do t[i] = {} end
return t
