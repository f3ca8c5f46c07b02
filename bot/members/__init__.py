"""Members, the points ledger, coupons, orders from the tills, lifecycle stages."""
