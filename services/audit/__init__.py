"""Audit log: consumes every topic into an append-only table and serves a query API."""
