"""Operations: health, readiness, metrics, and `serve` on the embedded default."""
