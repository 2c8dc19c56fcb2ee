"""Delivery of the catalog to the clusters: preflight checks before a change merges."""
