"""The outbox: writing notices once per key, reminders, and sending them under leases through a mailer."""
