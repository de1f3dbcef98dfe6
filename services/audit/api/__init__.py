"""HTTP API of the audit: dependencies and one router module per resource."""
