"""Pytest plugin: the openbao server for the suite (to be filled in)."""
