"""Kubernetes access for steps: one way to build a client, from a kubeconfig context or in-cluster."""

from __future__ import annotations

import os
from typing import Any

from vaultflow.base.errors import OperationError


def api_client(context: str | None = None) -> Any:
    """An ``ApiClient`` for ``context`` of ``$KUBECONFIG``; inside a pod without a context, in-cluster."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    try:
        if context is None:
            try:
                config.load_incluster_config()
                return client.ApiClient()
            except ConfigException:
                pass
        # $KUBECONFIG is read now: the client itself reads it once, at import time.
        return config.new_client_from_config(config_file=os.environ.get("KUBECONFIG"), context=context)
    except (ConfigException, OSError, ValueError) as error:  # OSError: a missing file, a directory
        where = f"context {context!r}" if context else "the current context"
        raise OperationError(f"cannot reach Kubernetes ({where}): {error}") from None


def core_v1(context: str | None = None) -> Any:
    from kubernetes import client

    return client.CoreV1Api(api_client(context))
