"""好友运营SOP: templates, audience filters, the per-customer engine, HQ campaign fan-out."""
