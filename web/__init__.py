"""Web front end and JSON API. Never imports TensorFlow: work is enqueued by task name."""
