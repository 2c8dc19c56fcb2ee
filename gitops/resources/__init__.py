"""Typed models of the Kubernetes resources vaultflow renders (ESO, Argo CD, kustomize)."""
