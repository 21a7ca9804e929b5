-- BAD: not a table
return 5
