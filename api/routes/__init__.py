"""One router per resource: entries, proofs, keys, tiles, health."""
