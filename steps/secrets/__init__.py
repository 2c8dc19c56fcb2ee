"""Secret values: generated from the catalog's generators, written to Vault with check-and-set."""
