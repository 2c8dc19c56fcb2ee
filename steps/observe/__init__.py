"""What vaultflow measures of a running platform: the exporter's metrics (``exporter``)."""
