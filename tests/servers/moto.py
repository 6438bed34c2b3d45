"""Pytest plugin: the moto server for the suite (to be filled in)."""
