"""Election data streams written through the ledger's append interface."""
