"""Weights entries: timm (filled in by the weights-registry work)."""
