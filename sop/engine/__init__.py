"""Friend-operation SOPs: templates (versions), enrolments per customer, a per-minute tick that
turns due steps into one outreach per (guide, step, slot), and the guides' task list."""
