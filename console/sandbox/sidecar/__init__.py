"""Dapr-API dev sidecar for the local sandbox: daprd's gRPC/HTTP API over Kafka, SQLite/PostgreSQL
and local files, conformance-tested with the official Dapr SDK (see README.md)."""
