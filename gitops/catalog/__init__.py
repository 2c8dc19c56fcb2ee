"""The secrets catalog: model, loading with precise errors, and placement of ESO objects."""

from vaultflow.gitops.catalog.errors import CatalogError, CatalogIssue
from vaultflow.gitops.catalog.loader import LoadedCatalog, load_catalog, parse_catalog
from vaultflow.gitops.catalog.model import Catalog

__all__ = ["Catalog", "CatalogError", "CatalogIssue", "LoadedCatalog", "load_catalog", "parse_catalog"]
