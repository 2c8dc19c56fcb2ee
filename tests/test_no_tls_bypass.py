"""Nothing in vaultflow turns TLS verification off (issue 14: TLS everywhere, verified).

A scan of every source and manifest the package, the sandbox, the benchmarks and the
Argo CD applications ship: no ``verify=False``, no ``insecure-skip-tls-verify`` /
``skipTLSVerify`` / ``insecureSkipVerify``, no ``ssl.CERT_NONE`` or ``check_hostname = False``,
no silenced urllib3 warnings, no ``VAULT_SKIP_VERIFY`` / ``tls_skip_verify``. (Argo's own
``--insecure-skip-verify`` option of ``vaultflow workflows submit`` is the user's explicit
choice and is spelled as an option, not one of these settings.) The runtime side is tested
where the clients are made: the kubeconfig (``tests/sandbox/test_sandbox_tls.py``), Vault and
the ESO emulator (``tests/sandbox/test_sandbox_vault_tls.py``).
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCANNED = (
    "steps",
    "gitops",
    "workflows",
    "sandbox",
    "vaultflow",
    "bench",
    "argocd-apps",
    "examples",
    "monitoring",
)
SUFFIXES = {".py", ".yaml", ".yml", ".json", ".hcl", ".j2"}
BYPASSES = re.compile(
    r"verify\s*=\s*False|verify_ssl\s*=\s*False|verify_tls\s*=\s*False|insecure-skip-tls-verify"
    r"|skipTLSVerify|insecureSkipVerify|CERT_NONE|check_hostname\s*=\s*False|disable_warnings"
    r"|tls_skip_verify|VAULT_SKIP_VERIFY|insecure:\s*true",
    re.IGNORECASE,
)


def _sources() -> list[Path]:
    files = []
    for top in SCANNED:
        for path in sorted((ROOT / top).rglob("*")):
            if path.is_file() and path.suffix in SUFFIXES and "__pycache__" not in path.parts:
                files.append(path)
    return files


def test_the_scan_sees_the_package() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in _sources()}
    assert {"steps/vault/api.py", "sandbox/eso/providers/vault.py", "sandbox/kubeconfig.py"} <= names


def test_the_pattern_catches_what_it_is_for() -> None:
    for line in (
        "hvac.Client(url=u, verify=False)",
        "configuration.verify_ssl = False",
        "insecure-skip-tls-verify: true",
        "    skipTLSVerify: true",
        "context.verify_mode = ssl.CERT_NONE",
        "urllib3.disable_warnings()",
    ):
        assert BYPASSES.search(line), line


def test_no_client_is_created_with_tls_verification_off() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _sources()
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
        if BYPASSES.search(line) and not line.lstrip().startswith("#")  # a comment sets nothing
    ]
    assert found == []
