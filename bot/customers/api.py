"""Admin API routes of this feature (registered on bot.api.spec.api at import)."""
