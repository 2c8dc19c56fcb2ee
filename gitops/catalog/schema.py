"""The catalog's JSON Schema, for editors (yaml-language-server, IntelliJ)."""

from __future__ import annotations

from typing import Any

from vaultflow.gitops.catalog.model import Catalog

SCHEMA_ID = "https://vaultflow.io/schemas/catalog-v1alpha1.json"


def catalog_json_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of the catalog, in its YAML (camelCase) field names."""
    schema = Catalog.model_json_schema(by_alias=True, mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": SCHEMA_ID, **schema}
