"""Courtside player_api."""
