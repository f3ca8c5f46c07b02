"""Outreach through each customer's own guide: plan → per-guide group sends → result sync,
with a per-customer ledger and caps. Campaigns (sop/campaigns) and SOPs build on it."""
