"""The steps image: what every vaultflow pod runs (the workflows' steps, the exporter), one setting.

The image is the only thing that differs between a release and a development build, so it is
one setting: ``VAULTFLOW_IMAGE``. By default it is the published steps image tagged with this
package's version, so a rendered manifest always runs the code it was rendered from. Its user
is the Dockerfile's non-root user, so that pods can enforce ``runAsNonRoot``.
"""

from __future__ import annotations

import os

from vaultflow import __version__

IMAGE_REPOSITORY = "ghcr.io/vaultflow/vaultflow-steps"
IMAGE_ENV = "VAULTFLOW_IMAGE"
DEFAULT_IMAGE = f"{IMAGE_REPOSITORY}:{__version__}"

# The Dockerfile's non-root user; pods run as it so that runAsNonRoot can be enforced.
STEPS_UID = 10001


def image() -> str:
    """The steps image every pod runs (``VAULTFLOW_IMAGE`` or the versioned default)."""
    return os.environ.get(IMAGE_ENV, "").strip() or DEFAULT_IMAGE
