"""The pipelines vaultflow ships: one module per pipeline family, each exposing ``PIPELINES``.

See :mod:`workflows.registry` for how they are found and :mod:`workflows.dsl`
for how they are declared.
"""
