"""vaultflow: automation for a Vault + External Secrets Operator + Argo CD secrets platform."""

__version__ = "0.1.0"
