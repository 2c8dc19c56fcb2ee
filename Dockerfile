# syntax=docker/dockerfile:1
# The steps image: the code that runs inside workflow pods (vaultflow.steps, run
# through Hera's runner: `python -m hera.workflows.runner -e vaultflow.steps.<module>:<function>`),
# with vaultflow's pinned dependencies, as a non-root user. The sandbox (emulators
# for developer machines) is not copied: vaultflow/sandbox is a link to ../sandbox,
# which stays outside the build context's copy, so the wheel built here has no
# emulator code (tests/test_layout.py builds the same COPY set and checks it).
#
# Build it with the tag the rendered templates reference by default
# (vaultflow/base/steps_image.py: ghcr.io/vaultflow/vaultflow-steps:<package version>):
#
#   docker build -t "ghcr.io/vaultflow/vaultflow-steps:$(python -c 'import vaultflow; print(vaultflow.__version__)')" .
#
# or set VAULTFLOW_IMAGE to your own reference before `vaultflow workflows render`.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
# Dependencies first (pinned by constraints.txt), so code changes reuse this layer.
COPY pyproject.toml constraints.txt README.md ./
RUN python -m venv /opt/vaultflow \
 && /opt/vaultflow/bin/pip install --upgrade pip \
 && /opt/vaultflow/bin/python - <<'PY'
import subprocess, sys, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
subprocess.run([sys.executable, "-m", "pip", "install", "-c", "constraints.txt", *deps], check=True)
PY
COPY vaultflow ./vaultflow
COPY steps ./steps
COPY workflows ./workflows
COPY gitops ./gitops
RUN /opt/vaultflow/bin/pip install --no-deps -c constraints.txt . \
 && cd / && /opt/vaultflow/bin/python -c "import vaultflow.steps, vaultflow.workflows, hera.workflows.runner" \
 && ! /opt/vaultflow/bin/python -c "import vaultflow.sandbox" 2>/dev/null

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="vaultflow-steps" \
      org.opencontainers.image.description="vaultflow workflow steps, run by Argo Workflows through Hera's runner" \
      org.opencontainers.image.licenses="Apache-2.0"
# UID/GID 10001 match vaultflow/base/steps_image.py (STEPS_UID): templates set runAsNonRoot and runAsUser to it.
RUN groupadd --system --gid 10001 vaultflow \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/vaultflow --shell /usr/sbin/nologin vaultflow
COPY --from=build /opt/vaultflow /opt/vaultflow
ENV PATH=/opt/vaultflow/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
WORKDIR /home/vaultflow
USER 10001:10001
# Argo sets the command (python -m hera.workflows.runner ...); this default only proves the image works.
CMD ["python", "-c", "import vaultflow.steps, vaultflow.workflows; print('vaultflow steps image')"]
