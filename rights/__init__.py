"""Courtside rights."""
