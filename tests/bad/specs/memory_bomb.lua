-- BAD: a string doubled 40 times (2^40 bytes: the memory limit stops it)
local s = "x"
for _ = 1, 40 do s = s .. s end
return { name = s }
