"""The case workflow: one durable run per "one thing" application."""
