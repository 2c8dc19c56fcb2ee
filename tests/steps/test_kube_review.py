"""``ClusterReview`` lives with the code that builds it: configure uses kube.review, never the reverse."""

from __future__ import annotations

import subprocess
import sys


def test_kube_review_does_not_import_configure() -> None:
    code = (
        "import sys, vaultflow.steps.kube.review as review; "
        "assert 'vaultflow.steps.vault.configure' not in sys.modules, 'kube.review imported configure'; "
        "import vaultflow.steps.vault.configure as configure; "
        "assert configure.ClusterReview is review.ClusterReview"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
