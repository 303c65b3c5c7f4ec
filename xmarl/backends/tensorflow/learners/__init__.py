"""Learners of the TensorFlow backend."""
