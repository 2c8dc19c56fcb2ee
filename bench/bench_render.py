"""Render and validate generated catalogs of 1,000 and 10,000 secrets (3 consumers each).

Target (issue 2): 10,000 secrets in under 20 s on a 2-core machine, growing
linearly: the 10k/1k ratio is reported against the ideal of 10. The baseline
is serialising the same number of manifests with plain ``yaml.dump``: the
floor any renderer writing YAML pays.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from bench.common import Measurement, stopwatch
from vaultflow.gitops.catalog import load_catalog
from vaultflow.gitops.render import render_catalog
from vaultflow.gitops.tree_writer import write_tree

CLUSTERS = 3


def generated_catalog(secrets: int) -> str:
    lines = [
        "apiVersion: vaultflow.io/v1alpha1",
        "kind: SecretsCatalog",
        "vault: {address: https://vault.example.com:8200}",
        "gitops: {repoUrl: https://git.example.com/gitops.git}",
        "clusters:",
        *[f"  - {{name: c{i}, kubeContext: c{i}, argocd: {{name: c{i}}}}}" for i in range(CLUSTERS)],
        "secrets:",
    ]
    for n in range(secrets):
        lines += [
            f"  - path: team-{n % 50}/app-{n}",
            "    keys:",
            "      - {name: password, generator: {type: password}}",
            "      - {name: user, generator: {type: static}}",
            '    rotation: {schedule: "0 3 * * *"}',
            "    consumers:",
            *[
                f"      - {{cluster: c{i}, namespace: team-{n % 50}, secretName: app-{n}}}"
                for i in range(CLUSTERS)
            ],
        ]
    return "\n".join(lines) + "\n"


def _render_once(secrets: int, workdir: Path) -> tuple[float, int]:
    source = workdir / f"catalog-{secrets}.yaml"
    source.write_text(generated_catalog(secrets))
    with stopwatch() as elapsed:
        tree = render_catalog(load_catalog(source))
        write_tree(tree, workdir / f"out-{secrets}")
    return elapsed(), sum(1 for _ in tree.manifests())


def _baseline(manifests: int) -> float:
    document = {
        "apiVersion": "external-secrets.io/v1",
        "kind": "ExternalSecret",
        "metadata": {"name": "x", "namespace": "y", "labels": {"a": "b"}},
        "spec": {"refreshInterval": "1h", "target": {"name": "x"}, "dataFrom": [{"extract": {"key": "a/b"}}]},
    }
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    with stopwatch() as elapsed:
        for _ in range(manifests):
            yaml.dump(document, Dumper=dumper, sort_keys=False)
    return elapsed()


def run() -> list[Measurement]:
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        small, small_count = _render_once(1_000, workdir)
        large, large_count = _render_once(10_000, workdir)
    return [
        Measurement(
            "render+validate 1k secrets",
            small,
            baseline_name=f"yaml.dump x{small_count}",
            baseline_seconds=_baseline(small_count),
            note=f"{small_count} manifests",
        ),
        Measurement(
            "render+validate 10k secrets",
            large,
            baseline_name=f"yaml.dump x{large_count}",
            baseline_seconds=_baseline(large_count),
            target_seconds=20.0,
            note=f"{large_count} manifests",
        ),
        Measurement(
            "growth 1k -> 10k",
            large,
            baseline_name="1k render",
            baseline_seconds=small,
            target_ratio=12.0,
            note="linear = 10x",
        ),
    ]
