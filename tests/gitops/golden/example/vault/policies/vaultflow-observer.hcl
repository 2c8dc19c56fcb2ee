# Rendered by `vaultflow render` from the secrets catalog. Do not edit by hand.
# The exporter and the audit: read-only; metadata of every secret, never a value.

path "secret/metadata/*" {
  capabilities = ["read", "list"]
}

path "sys/policies/acl/eso-prod-eu" {
  capabilities = ["read"]
}

path "sys/policies/acl/eso-prod-us" {
  capabilities = ["read"]
}

path "sys/policies/acl/vaultflow-rotation" {
  capabilities = ["read"]
}

path "sys/policies/acl/vaultflow-rotation-*" {
  capabilities = ["read"]
}

path "sys/policies/acl/vaultflow-bootstrap" {
  capabilities = ["read"]
}

path "sys/policies/acl/vaultflow-observer" {
  capabilities = ["read"]
}

path "auth/token/revoke-self" {
  capabilities = ["update"]
}

path "auth/kubernetes-prod-eu/role/external-secrets" {
  capabilities = ["read"]
}

path "auth/kubernetes-prod-us/role/external-secrets" {
  capabilities = ["read"]
}
