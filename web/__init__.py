"""Web front end and JSON API. Never imports TensorFlow: work is enqueued by task name.

Views call the operations in sentiment_core/operations.py; web/errors.py maps their refusals to
HTTP statuses and web/app.py's error handler answers them; web/services.py holds what every
request works with, typed."""
