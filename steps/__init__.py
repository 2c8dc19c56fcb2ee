"""Code that runs inside workflow pods: plain typed functions and thin adapters.

Steps never import ``workflows`` or ``sandbox``; they take and return
references (Vault paths and versions, keeper URIs, report paths), never
secret values, because Argo stores and displays step inputs and outputs.
"""
