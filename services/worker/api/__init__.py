"""HTTP API of the worker: dependencies and one router module per resource."""
