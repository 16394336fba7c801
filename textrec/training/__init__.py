"""Training: losses, optimiser, train state and steps, checkpoints, evaluation and metrics."""
