"""Ground floor of the sentiment service: settings, database, registry, text handling."""
