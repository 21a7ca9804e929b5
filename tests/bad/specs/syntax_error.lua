-- BAD: a syntax error
return { name = }
