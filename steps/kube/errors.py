"""One sentence for whatever the Kubernetes client raises: an API answer, or no answer at all."""

from __future__ import annotations

import contextlib
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
        raise OperationError(f"{where}: cannot {action} ({error.status} {error.reason})") from None
    except HTTPError as error:
        raise OperationError(
            f"{where}: cannot {action}: the Kubernetes API server is unreachable ({transport_cause(error)})"
        ) from None
