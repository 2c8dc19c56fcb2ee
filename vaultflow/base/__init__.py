"""The foundation every vaultflow package stands on: errors and small shared parsers.

Nothing here imports any other part of vaultflow, so every package (steps,
workflows, gitops, sandbox, the CLI) may import it without creating a cycle.
"""
