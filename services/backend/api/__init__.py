"""HTTP API of the backend: dependencies and one router module per resource."""
