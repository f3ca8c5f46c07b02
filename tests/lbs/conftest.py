"""Location: coordinate systems and the nearest store."""
