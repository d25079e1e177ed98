"""Shared helpers of the provider, one job per module (``bounded_http``: answers we can trust)."""
