"""The `sentiment` command: the top floor, above web, worker and trainer."""
