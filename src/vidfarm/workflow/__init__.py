"""Workflows: API-format graphs, their parameter declarations, and checks against /object_info."""
