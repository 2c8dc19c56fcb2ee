# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# External Secrets Operator in cluster prod-eu: read-only, exactly these paths.

path "secret/data/argocd/admin" {
  capabilities = ["read"]
}

path "secret/data/prod/app-credentials" {
  capabilities = ["read"]
}

path "secret/data/prod/database" {
  capabilities = ["read"]
}

path "secret/data/prod/lambda/db-password" {
  capabilities = ["read"]
}

path "secret/data/vaultflow/smoke-test/prod-eu" {
  capabilities = ["read"]
}

path "sys/policies/acl/eso-prod-eu" {
  capabilities = ["read"]
}
