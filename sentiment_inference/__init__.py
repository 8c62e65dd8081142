"""The TensorFlow side that the worker and the trainer share: the scorer, the compiled forward
pass and the custom layers. The web never imports it (tests/test_architecture.py)."""
