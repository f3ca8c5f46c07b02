"""The HQ console: people's accounts (argon2), cookie sessions with CSRF, and the built web app at /console/."""
