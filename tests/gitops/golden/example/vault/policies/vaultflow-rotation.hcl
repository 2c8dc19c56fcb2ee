# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# Rotation workflow: a child token for one batch, holding only that batch's shards.

path "auth/token/create" {
  capabilities = ["update"]
  allowed_parameters = {
    "display_name" = []
    "no_default_policy" = []
    "policies" = []
    "renewable" = []
    "ttl" = []
  }
}

path "auth/token/lookup-self" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}
