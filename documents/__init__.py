"""Documents generated from the catalogue: service guides (办事指南) and flow charts."""
