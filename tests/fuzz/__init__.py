"""Hostile and odd inputs for fuzz tests, shared by unit and end-to-end tests."""
