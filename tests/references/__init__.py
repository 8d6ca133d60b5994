"""Test references: faithful transcriptions of the tutorials' networks (not part of reslab)."""
