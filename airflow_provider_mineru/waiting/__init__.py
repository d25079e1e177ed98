"""Waiting and ending a wait: what is waited on, the one wait loop, its typed outcome, finishing."""
