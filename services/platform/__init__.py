"""What every service shares: settings, JSON logging with correlation ids, the app factory, the Dapr client wrapper and the event contract. Names and conventions: CONTRIBUTING.md."""
