"""Training loop, evaluation, checkpoints and metrics logging (backend-neutral)."""
