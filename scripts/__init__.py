"""Developer scripts; a package so tests can import the corpus table."""
