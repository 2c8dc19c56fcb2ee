"""New secret values from the catalog's generators, drawn from the OS's CSPRNG (``secrets``)."""

import base64
import secrets
import string
import uuid

from vaultflow.gitops.catalog.model import PasswordGenerator, RandomGenerator, SecretField, UuidGenerator

_CLASSES = (
    ("lowercase", string.ascii_lowercase),
    ("uppercase", string.ascii_uppercase),
    ("digits", string.digits),
)


def password(spec: PasswordGenerator) -> str:
    """A password of ``spec.length`` with at least one character of every enabled class."""
    classes = [chars for name, chars in _CLASSES if getattr(spec, name)]
    if spec.symbols:
        classes.append(spec.symbol_set)
    alphabet = "".join(classes)
    chosen = [secrets.choice(chars) for chars in classes]  # one of each class, guaranteed
    chosen += [secrets.choice(alphabet) for _ in range(spec.length - len(chosen))]
    secrets.SystemRandom().shuffle(chosen)
    return "".join(chosen)


def random_bytes(spec: RandomGenerator) -> str:
    raw = secrets.token_bytes(spec.bytes)
    if spec.encoding == "hex":
        return raw.hex()
    if spec.encoding == "base64url":
        return base64.urlsafe_b64encode(raw).decode()
    return base64.b64encode(raw).decode()


def generate(field: SecretField) -> str | None:
    """A new value for ``field``; None for ``static`` keys, which only humans set."""
    generator = field.generator
    if isinstance(generator, PasswordGenerator):
        return password(generator)
    if isinstance(generator, RandomGenerator):
        return random_bytes(generator)
    if isinstance(generator, UuidGenerator):
        return str(uuid.uuid4())
    return None
