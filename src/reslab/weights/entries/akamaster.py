"""Weights entries: akamaster (filled in by the weights-registry work)."""
