"""Courtside ingest."""
