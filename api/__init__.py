"""HTTP API and the `saksi` operator command (the service wiring)."""
