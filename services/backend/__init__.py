"""The task API: tasks, their recurrence, and the transactional outbox that publishes their events."""
