"""Inputs: what DAG authors write as paths, checks made before any request, page counts."""
