"""Proof export bundles and audit reports (future work)."""
