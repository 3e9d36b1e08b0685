"""Time and delivery: the outbox dispatcher (and, later, reminders)."""
