"""Step functions whose signatures the declaration checks must refuse (or accept)."""

from pydantic import BaseModel, SecretStr


class Credentials(BaseModel):
    username: str
    password: SecretStr


def returns_secret() -> SecretStr:
    return SecretStr("x")


def takes_credentials(credentials: Credentials) -> str:
    return credentials.username


def returns_nested_secret() -> list[dict[str, Credentials]]:
    return []


def needs(path: str, version: int = 1) -> str:
    return f"{path}@{version}"
