"""HTTP API of the notification: dependencies and one router module per resource."""
