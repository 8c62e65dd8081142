"""Scoring workers: a Celery app whose processes each hold the active model."""
