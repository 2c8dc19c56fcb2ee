"""What an Argo CD AppProject permits, with Argo CD's own matching rules.

A project is a security boundary only if the Applications in it actually fit
through it; a typo in a namespace shows up as a sync error in production, not
in review. These checks reproduce the rules of Argo CD's ``AppProject``
(``pkg/apis/application/v1alpha1/app_project_types.go``):

* source repositories: normalised URLs, glob with ``/`` as separator;
* destinations: the cluster by ``server`` or by ``name`` (whichever the
  Application uses), and the namespace, each a glob;
* namespaced kinds: allowed unless a whitelist is set and misses them, or a
  blacklist holds them; cluster-scoped kinds: allowed only when whitelisted
  (optionally by name, Go ``filepath.Match``), never when blacklisted.

Deny patterns (``!ns``) are not used by vaultflow; a project that uses one is
reported rather than half-understood.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def _glob_regex(pattern: str, separator: str | None) -> re.Pattern[str]:
    """Go glob (``*``, ``?``, ``[...]``) as a regex; ``*`` stops at ``separator``."""
    any_char = f"[^{re.escape(separator)}]" if separator else "."
    out, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "*":
            out.append(f"{any_char}*")
        elif char == "?":
            out.append(any_char)
        elif char == "[":
            end = pattern.index("]", i)
            body = pattern[i + 1 : end]
            out.append(f"[{'^' + body[1:] if body.startswith(('!', '^')) else body}]")
            i = end
        else:
            out.append(re.escape(char))
        i += 1
    return re.compile("".join(out) + r"\Z")


def glob_match(pattern: str, value: str, separator: str | None = None) -> bool:
    if pattern.startswith("!"):
        raise ValueError(f"deny pattern {pattern!r} is not supported by this checker")
    if pattern == "*":
        return True
    return _glob_regex(pattern, separator).match(value) is not None


def normalize_repo_url(url: str) -> str:
    """Argo CD's NormalizeGitURL for https URLs: case and a trailing .git/'/' do not matter."""
    url = url.strip().lower().rstrip("/")
    return url.removesuffix(".git")


@dataclass(frozen=True)
class ResourceRule:
    group: str
    kind: str
    name: str = ""

    def matches(self, group: str, kind: str, name: str = "") -> bool:
        if not (glob_match(self.kind, kind, "/") and glob_match(self.group, group, "/")):
            return False
        return not self.name or glob_match(self.name, name, "/")


@dataclass(frozen=True)
class Destination:
    server: str
    name: str
    namespace: str


def _rules(items: Sequence[Mapping[str, Any]] | None) -> tuple[ResourceRule, ...] | None:
    if items is None:
        return None
    return tuple(ResourceRule(str(i["group"]), str(i["kind"]), str(i.get("name", ""))) for i in items)


@dataclass(frozen=True)
class ProjectPolicy:
    """The permission-relevant part of one AppProject."""

    name: str
    source_repos: tuple[str, ...]
    destinations: tuple[Destination, ...]
    cluster_whitelist: tuple[ResourceRule, ...]
    cluster_blacklist: tuple[ResourceRule, ...]
    namespace_whitelist: tuple[ResourceRule, ...] | None
    namespace_blacklist: tuple[ResourceRule, ...]

    @classmethod
    def from_manifest(cls, project: Mapping[str, Any]) -> ProjectPolicy:
        spec = project.get("spec", {})
        return cls(
            name=str(project["metadata"]["name"]),
            source_repos=tuple(spec.get("sourceRepos", [])),
            destinations=tuple(
                Destination(str(d.get("server", "")), str(d.get("name", "")), str(d.get("namespace", "")))
                for d in spec.get("destinations", [])
            ),
            cluster_whitelist=_rules(spec.get("clusterResourceWhitelist")) or (),
            cluster_blacklist=_rules(spec.get("clusterResourceBlacklist")) or (),
            namespace_whitelist=_rules(spec.get("namespaceResourceWhitelist")),
            namespace_blacklist=_rules(spec.get("namespaceResourceBlacklist")) or (),
        )

    def permits_source(self, repo_url: str) -> bool:
        wanted = normalize_repo_url(repo_url)
        return any(glob_match(normalize_repo_url(p), wanted, "/") for p in self.source_repos)

    def permits_destination(self, *, namespace: str, server: str = "", name: str = "") -> bool:
        for item in self.destinations:
            name_matched = bool(name) and glob_match(item.name, name)
            server_matched = bool(server) and glob_match(item.server, server)
            if (name_matched or server_matched) and glob_match(item.namespace, namespace):
                return True
        return False

    def permits_kind(self, group: str, kind: str, *, namespaced: bool, name: str = "") -> bool:
        if namespaced:
            whitelisted = self.namespace_whitelist is None or any(
                rule.matches(group, kind) for rule in self.namespace_whitelist
            )
            return whitelisted and not any(rule.matches(group, kind) for rule in self.namespace_blacklist)
        whitelisted = any(rule.matches(group, kind, name) for rule in self.cluster_whitelist)
        return whitelisted and not any(rule.matches(group, kind, name) for rule in self.cluster_blacklist)

    def application_violations(self, application: Mapping[str, Any]) -> list[str]:
        """Why Argo CD would refuse to sync ``application`` in this project (empty: it would not)."""
        spec = application.get("spec", {})
        problems = []
        sources = spec.get("sources") or [spec.get("source", {})]
        for source in sources:
            repo = str(source.get("repoURL", ""))
            if not self.permits_source(repo):
                problems.append(f"source repository {repo!r} is not in sourceRepos of project {self.name}")
        destination = spec.get("destination", {})
        namespace = str(destination.get("namespace", ""))
        server, cluster = str(destination.get("server", "")), str(destination.get("name", ""))
        if not self.permits_destination(namespace=namespace, server=server, name=cluster):
            target = f"server {server!r}" if server else f"cluster {cluster!r}"
            problems.append(
                f"destination {target} namespace {namespace!r} is not permitted in project {self.name}"
            )
        return problems

    def object_violations(
        self, obj: Mapping[str, Any], *, namespaced: bool, server: str = "", name: str = ""
    ) -> list[str]:
        """Why Argo CD would refuse to apply ``obj`` to the given cluster in this project."""
        api_version = str(obj.get("apiVersion", ""))
        group = api_version.split("/", maxsplit=1)[0] if "/" in api_version else ""
        kind = str(obj.get("kind", ""))
        meta = obj.get("metadata", {})
        label = f"{kind} {meta.get('name', '')!r}"
        if not self.permits_kind(group, kind, namespaced=namespaced, name=str(meta.get("name", ""))):
            return [f"{label}: kind {group or 'core'}/{kind} is not permitted in project {self.name}"]
        namespace = str(meta.get("namespace", ""))
        if namespaced and not self.permits_destination(namespace=namespace, server=server, name=name):
            return [f"{label}: namespace {namespace!r} is not permitted in project {self.name}"]
        return []
