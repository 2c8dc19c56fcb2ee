# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# Bootstrap workflow without root: generate a root token, which also takes a quorum of unseal shares.

path "sys/generate-root-token/*" {
  capabilities = ["create", "read", "update", "delete"]
}
