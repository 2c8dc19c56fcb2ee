# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# Rotation workflow: stage credentials before they are set and tested, read the admin logins.

path "secret/data/vaultflow/credential-staging/prod/database" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/vaultflow/credential-staging/prod/database" {
  capabilities = ["read", "patch", "delete"]
}

path "secret/data/prod/database-admin" {
  capabilities = ["read"]
}
