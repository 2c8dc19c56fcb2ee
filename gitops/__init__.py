"""GitOps: the secrets catalog, rendering of ESO resources, Vault policies and Argo CD Applications."""
