"""Ground floor of the sentiment service: settings, database, registry, text handling, and
the operations the web and the command line share (operations.py)."""
