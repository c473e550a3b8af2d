"""Courtside transcode."""
