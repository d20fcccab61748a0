"""Metering and the settlement rule, mirrored from the contract for reports and audits."""
