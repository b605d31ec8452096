"""Approval gates: opening them idempotently, deciding them in one transaction, and what a decision does."""
