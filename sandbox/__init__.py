"""The local sandbox: the whole platform on one machine, for the demo and end-to-end tests.

Real OpenBao (``openbao``) and moto run beside emulators that speak the real
wire protocols (``kube``: the Kubernetes API), so the real SDKs run unmodified
and only their endpoints change. ``lifecycle`` starts and stops it (behind
``vaultflow sandbox``), ``supervisor`` is the background process hosting it,
``http`` is the HTTP layer every emulator shares. Product code never imports
this package; see docs/sandbox.md for what each part does and does not do.
"""
