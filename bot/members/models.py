"""Members, points ledger, coupons and orders (tables)."""
