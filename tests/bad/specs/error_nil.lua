-- BAD: error(nil)
error(nil)
