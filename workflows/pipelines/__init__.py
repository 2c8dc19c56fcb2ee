"""The pipelines vaultflow ships: one module per pipeline family, each exposing ``PIPELINES``.

See :mod:`vaultflow.workflows.registry` for how they are found and :mod:`vaultflow.workflows.dsl`
for how they are declared.
"""
