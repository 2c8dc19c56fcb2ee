"""The secrets catalog: model, loading with precise errors, and placement of ESO objects."""

from gitops.catalog.errors import CatalogError, CatalogIssue
from gitops.catalog.loader import LoadedCatalog, load_catalog, parse_catalog
from gitops.catalog.model import Catalog

__all__ = ["Catalog", "CatalogError", "CatalogIssue", "LoadedCatalog", "load_catalog", "parse_catalog"]
