"""Compliance rules of continuous review (持续推进): pure functions by family, each quoting its seed.

Each family module holds the rule as a pure function (no database, no Prefect) plus, in its docstring, the
set-based SQL form the compliance pass (`tasks/compliance/`) runs over a whole program. The functions are
the specification the SQL is tested against: the same boundaries hold in both.

| module | rules | seeds |
|---|---|---|
| `codes` | the rule codes, their Chinese labels, violation states and subjects | — |
| `delivery` | late delivery of an order; an enterprise's pattern of late or refused deliveries | 000, 001, 002 |
| `payment` | payment after 次月底 of acceptance; overdue > N months → interview candidate | 000, 001, 002 |
| `pricing` | sale price by kind (zero markup, ≤ winning, pharmacy cap with index); online = offline | 000, 001, 002 |
| `selection` | drug count floor / committed count; recommended-list share; special drugs | 000, 001, 002 |
| `participation` | leaving before the minimum participation | 001, 002 |
| `listing` | late report of a new national lowest price; a year without sales | 004 |
| `price_alerts` | red / yellow / blue purchase-price alerts against the region's median | 004 |
"""
