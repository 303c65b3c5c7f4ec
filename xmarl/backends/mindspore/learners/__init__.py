"""Learners of the MindSpore backend."""
