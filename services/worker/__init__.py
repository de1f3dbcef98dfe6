"""Recurring tasks: consumes task-events and creates the next instance of a series through the backend."""
