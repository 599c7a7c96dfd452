"""Documents OneThing produces: service guides (办事指南) and flow charts from the catalogue,
and a closed case's archive package."""
