"""Reminders: consumes reminders, schedules one Dapr Job per reminder and delivers it when the job fires."""
