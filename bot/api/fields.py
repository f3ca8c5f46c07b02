"""Integer bounds shared by request models, so the OpenAPI document states what the columns hold."""

MAX_BIGINT = 2**63 - 1  # BIGINT columns and ids
MAX_INT = 2**31 - 1  # INTEGER columns
MAX_FEN = 10**11  # ¥1,000,000,000.00: above any real order or coupon
