"""The KV v2 metadata of many paths at once, on kept-alive connections: the exporter's and the audit's reads.

A scrape reads the metadata of every catalog path (1,000 reads for a 1,000-secret catalog). Through
hvac each read cost about 1.9 ms of Python on the development machine, for an HTTP exchange of
about 0.2 ms: requests prepares every request anew (it walks the environment for proxy settings
twice, looks for ``~/.netrc``, merges the session's settings) and the connect-retry adapter builds
its retry policy. Held under the GIL, that Python alone made the scrape as slow as it was, however
many threads read. These reads go through urllib3 (what requests itself sits on) with the server,
token, CA and timeout of the ``VaultApi`` they are made for, and fail with the same sentences: a
status becomes hvac's exception for it and a transport failure requests' before ``vault_errors``
words them. When the environment names a proxy for Vault they go through hvac instead, which
honours it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from vaultflow.steps.rotation.write import SecretMetadata, metadata_from, read_metadata
from vaultflow.steps.vault.api import VaultApi


class MetadataReads:
    """Metadata reads of one KV mount as one token, ``connections`` at a time on as many connections.

    ``timed`` (when given) is told each read's duration in seconds. Close it (``with``) to stop its
    threads and connections; a new token needs a new one.
    """

    def __init__(
        self, vault: VaultApi, kv: str, *, connections: int, timed: Callable[[float], None] | None = None
    ) -> None:
        self.vault, self.kv, self._timed = vault, kv, timed
        self._pool = _connection_pool(vault, connections)
        self._threads = ThreadPoolExecutor(max_workers=connections, thread_name_prefix="vault-metadata")

    def __enter__(self) -> MetadataReads:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)
        if self._pool is not None:
            self._pool.clear()

    def read(self, path: str) -> SecretMetadata | None:
        """The path's metadata, None when it does not exist; ``OperationError`` as ``read_metadata``."""
        import time

        started = time.perf_counter()
        try:
            if self._pool is None:
                return read_metadata(self.vault, self.kv, path)
            return self._pooled_read(path)
        finally:
            if self._timed is not None:
                self._timed(time.perf_counter() - started)

    def read_all(self, paths: Iterable[str]) -> dict[str, SecretMetadata | None]:
        """Every path's metadata (one read each, concurrently). The first failure is raised, and the
        reads not started yet are dropped: an unreachable or sealed Vault fails them all alike."""
        futures: dict[str, Future[SecretMetadata | None]] = {}
        for path in paths:
            if path not in futures:
                futures[path] = self._threads.submit(self.read, path)
        try:
            return {path: future.result() for path, future in futures.items()}
        finally:
            for future in futures.values():
                future.cancel()

    def _pooled_read(self, path: str) -> SecretMetadata | None:
        import hvac.utils
        import requests.utils

        assert self._pool is not None  # read() takes hvac's way without one
        url = requests.utils.requote_uri(f"{self.vault.address}/v1/{self.kv}/metadata/{path}")
        headers = {"X-Vault-Request": "true", "X-Vault-Token": str(self.vault.client.token or "")}
        with self.vault.errors(f"read the metadata of {self.kv}/{path}"), _as_requests_errors():
            response = self._pool.request("GET", url, headers=headers, redirect=False)
            if response.status == 404:
                return None
            body = _json(response.data)
            if response.status != 200:
                errors = body.get("errors") if isinstance(body, dict) else None
                hvac.utils.raise_for_error("GET", url, response.status, errors=errors, json=body)
        return metadata_from(body["data"])


def _json(data: bytes) -> Any:
    try:
        return json.loads(data) if data else None
    except ValueError:
        return None


def _connection_pool(vault: VaultApi, connections: int) -> Any:
    """A urllib3 pool verifying TLS as requests would for this client; None when a proxy applies."""
    import requests.utils
    import urllib3

    if requests.utils.select_proxy(vault.address, requests.utils.get_environ_proxies(vault.address)):
        return None
    verify = vault.client.session.verify
    if not isinstance(verify, str):  # True: requests' own bundle, or the one its variables name
        verify = (
            os.environ.get("REQUESTS_CA_BUNDLE")
            or os.environ.get("CURL_CA_BUNDLE")
            or requests.utils.DEFAULT_CA_BUNDLE_PATH
        )
    timeout = urllib3.Timeout(connect=vault.timeout, read=vault.timeout)
    # block: never more connections than readers, and none opened only to be thrown away
    return urllib3.PoolManager(
        num_pools=2, maxsize=connections, block=True, timeout=timeout, retries=False,
        cert_reqs="CERT_REQUIRED", ca_certs=verify,
    )  # fmt: skip


@contextmanager
def _as_requests_errors() -> Iterator[None]:
    """urllib3's transport failures as the requests errors ``vault_errors`` words (the cause kept)."""
    import requests.exceptions
    import urllib3.exceptions

    try:
        yield
    except urllib3.exceptions.SSLError as error:
        raise requests.exceptions.SSLError(error) from error
    except urllib3.exceptions.NewConnectionError as error:  # a ConnectTimeoutError by class, not by cause
        raise requests.exceptions.ConnectionError(error) from error
    except urllib3.exceptions.TimeoutError as error:
        raise requests.exceptions.Timeout(error) from error
    except (urllib3.exceptions.HTTPError, OSError) as error:
        raise requests.exceptions.ConnectionError(error) from error
