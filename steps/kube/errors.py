"""One sentence for whatever the Kubernetes client raises: an API answer, or no answer at all."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

from vaultflow.base.errors import OperationError
from vaultflow.steps.transport import transport_cause


@contextlib.contextmanager
def kube_errors(where: str, action: str) -> Iterator[None]:
    """``ApiException`` (the API server answered: status and reason) and urllib3's ``HTTPError``
    (it did not: the client's retries end in ``MaxRetryError``) become one ``OperationError``."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        yield
    except ApiException as error:
        raise OperationError(
            f"{where}: cannot {action} ({error.status} {error.reason}{_denial(error)})"
        ) from None
    except HTTPError as error:
        raise OperationError(
            f"{where}: cannot {action}: the Kubernetes API server is unreachable ({transport_cause(error)})"
        ) from None


def _denial(error: object) -> str:
    """For a 403, the API server's message: RBAC's names the user, verb, resource and namespace
    that a Role must grant (``... cannot get resource "leases" in API group "coordination.k8s.io"
    in the namespace "argo"``), never a value."""
    if getattr(error, "status", None) != 403:
        return ""
    try:
        message = json.loads(getattr(error, "body", None) or "{}").get("message", "")
    except (ValueError, AttributeError):
        return ""
    return f": {message}" if isinstance(message, str) and message else ""
