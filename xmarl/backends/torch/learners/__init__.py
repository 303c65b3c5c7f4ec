"""Learners of the PyTorch backend."""
