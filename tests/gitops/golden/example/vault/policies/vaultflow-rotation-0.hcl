# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# Rotation workflow, shard 0 of 1: write (check-and-set) only these secrets that rotate.

path "secret/data/prod/app-credentials" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/prod/app-credentials" {
  capabilities = ["read", "patch"]
}

path "secret/data/prod/cloudrun/signing-key" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/prod/cloudrun/signing-key" {
  capabilities = ["read", "patch"]
}

path "secret/data/prod/database" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/prod/database" {
  capabilities = ["read", "patch"]
}

path "secret/data/prod/lambda/db-password" {
  capabilities = ["create", "read", "update"]
}

path "secret/metadata/prod/lambda/db-password" {
  capabilities = ["read", "patch"]
}
