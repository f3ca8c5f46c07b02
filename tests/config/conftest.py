"""Settings: one TIMEZONE for the whole process."""
