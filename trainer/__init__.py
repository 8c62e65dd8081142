"""Training: data loading, model building, training, evaluation and registration."""
