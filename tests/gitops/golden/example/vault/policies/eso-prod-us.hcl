# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# External Secrets Operator in cluster prod-us: read-only, exactly these paths.

path "secret/data/prod/cloudrun/signing-key" {
  capabilities = ["read"]
}

path "secret/data/prod/database" {
  capabilities = ["read"]
}

path "secret/data/shared/stripe" {
  capabilities = ["read"]
}

path "secret/data/vaultflow/smoke-test/prod-us" {
  capabilities = ["read"]
}

path "sys/policies/acl/eso-prod-us" {
  capabilities = ["read"]
}
