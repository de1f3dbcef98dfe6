"""Operator tooling for the Todo platform: the `todo-console` CLI, the TUI and the local sandbox."""
