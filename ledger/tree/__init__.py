"""Pure Merkle tree arithmetic: compact ranges, roots, tile coordinates (no I/O)."""
