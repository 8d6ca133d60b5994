"""Weights entries: keras (filled in by the weights-registry work)."""
