"""The facilitator's SQLite database (sqlite-utils)."""
