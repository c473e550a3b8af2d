"""Courtside web."""
