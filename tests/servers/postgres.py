"""Pytest plugin: the postgres server for the suite (to be filled in)."""
