"""Vault (and OpenBao) steps of the bootstrap pipeline: status, init, unseal, root token, configure,
smoke-test. Each step is idempotent and safe for Argo to retry."""
