"""Weights entries: torchvision (filled in by the weights-registry work)."""
