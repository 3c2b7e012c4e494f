"""Letterhead: a platform's notification email, sent under each tenant's own identity."""

__version__ = "0.1.0"
