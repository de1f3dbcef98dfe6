"""HTTP API of the websocket: dependencies and one router module per resource."""
