"""Cost and benefit per participant, computed from what happened on the ledger."""
