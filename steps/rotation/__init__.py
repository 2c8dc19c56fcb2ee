"""Rotation steps: plan which secrets rotate, write their new versions, and prove they propagated.

Each step is a plain typed function whose outputs are references (Vault path
and version, run id), never values.
"""
