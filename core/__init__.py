"""Courtside core."""
