"""ESO's AWS Secrets Manager provider (push side), with the real ``boto3`` against the sandbox's moto.

As ESO's provider does it:

* a new secret is created with ``SecretBinary`` (``SecretString`` with
  metadata ``secretPushFormat: string``), the tag ``managed-by:
  external-secrets``, description ``secret 'managed-by:external-secrets'`` and
  version ``00000000-0000-0000-0000-000000000001``;
* an existing secret without that tag is refused ("secret not managed by
  external-secrets"); with it, a new version is put only when the value differs;
* ``property`` sets the value as a JSON string at that key of the secret's
  JSON, editing the text as sjson does (``sandbox/eso/sjson.py``): other
  keys and formatting are kept, so an unchanged value puts no version; a
  current value that is not JSON is refused, and an sjson error (a key that
  is not an index into a JSON array) is dropped, as ESO drops it: the
  document goes back unchanged, so nothing is written;
* ``role`` is assumed through STS before any call; static credentials come
  from the store's ``auth.secretRef`` Secret, as ESO users do outside AWS;
* deleting (``deletionPolicy: Delete``) honours the store's ``secretsManager``
  settings: ``forceDeleteWithoutRecovery`` deletes at once,
  ``recoveryWindowInDays`` (7 to 30, not with the former) schedules the
  deletion; without either AWS waits 30 days, and a secret scheduled for
  deletion refuses a new push (``GetSecretValue`` fails) until it is gone.

The endpoint is the sandbox's moto (ESO itself would take it from
``AWS_SECRETSMANAGER_ENDPOINT``).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vaultflow.sandbox.eso import sjson
from vaultflow.sandbox.eso.providers.base import (
    JsonObject,
    ProviderError,
    PushData,
    WriteOnly,
    extract_secret_data,
)
from vaultflow.sandbox.eso.providers.metadata import push_metadata
from vaultflow.sandbox.faults import FaultInjector, InjectedFault

MANAGED_BY = ("managed-by", "external-secrets")
INITIAL_VERSION = "00000000-0000-0000-0000-000000000001"


@dataclass(frozen=True)
class DeleteOptions:
    """The store's ``spec.provider.aws.secretsManager`` (``esv1.SecretsManager``)."""

    force_delete_without_recovery: bool = False
    recovery_window_in_days: int = 0

    @classmethod
    def from_spec(cls, spec: JsonObject | None) -> DeleteOptions:
        spec = spec or {}
        return cls(bool(spec.get("forceDeleteWithoutRecovery")), int(spec.get("recoveryWindowInDays") or 0))

    def arguments(self) -> JsonObject:
        """``DeleteSecretInput`` fields, validated as ESO's ``awsutil.ValidateDeleteSecretInput`` does."""
        window = self.recovery_window_in_days
        if window and not 7 <= window <= 30:
            raise ProviderError(
                "invalid DeleteSecretInput: RecoveryWindowInDays must be between 7 and 30 days"
            )
        if window and self.force_delete_without_recovery:
            raise ProviderError(
                "invalid DeleteSecretInput: ForceDeleteWithoutRecovery conflicts with RecoveryWindowInDays"
            )
        arguments: JsonObject = {}
        if self.force_delete_without_recovery:
            arguments["ForceDeleteWithoutRecovery"] = True
        if window:
            arguments["RecoveryWindowInDays"] = window
        return arguments


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str | None = None


def _error_code(error: Exception) -> str:
    response = getattr(error, "response", None)
    return str((response or {}).get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


class AwsSecretsManagerProvider(WriteOnly):
    name = "aws"

    def __init__(
        self,
        *,
        endpoint: str,
        region: str,
        credentials: AwsCredentials,
        role: str = "",
        prefix: str = "",
        delete_options: DeleteOptions | None = None,
        faults: FaultInjector,
        ca_file: str = "",
    ) -> None:
        self.endpoint = endpoint
        # The CA the sandbox's moto certificate chains to: what the pod's system trust is to ESO's
        # client of the real endpoint (botocore verifies; empty: its default bundle)
        self._verify = ca_file or None
        self.region = region
        self._credentials = credentials
        self._role = role
        self._prefix = prefix
        self._delete_options = delete_options or DeleteOptions()
        self._faults = faults
        self._client: Any = None
        self._lock = threading.Lock()

    def _session_credentials(self) -> AwsCredentials:
        if not self._role:
            return self._credentials
        import boto3

        sts = boto3.client(
            "sts",
            region_name=self.region,
            endpoint_url=self.endpoint,
            verify=self._verify,
            aws_access_key_id=self._credentials.access_key_id,
            aws_secret_access_key=self._credentials.secret_access_key,
            aws_session_token=self._credentials.session_token,
        )
        assumed = sts.assume_role(RoleArn=self._role, RoleSessionName="external-secrets")["Credentials"]
        return AwsCredentials(assumed["AccessKeyId"], assumed["SecretAccessKey"], assumed["SessionToken"])

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                import boto3
                from botocore.config import Config

                credentials = self._session_credentials()
                self._client = boto3.client(
                    "secretsmanager",
                    region_name=self.region,
                    endpoint_url=self.endpoint,
                    verify=self._verify,
                    aws_access_key_id=credentials.access_key_id,
                    aws_secret_access_key=credentials.secret_access_key,
                    aws_session_token=credentials.session_token,
                    config=Config(
                        retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5, read_timeout=30
                    ),
                )
            return self._client

    def _call(self, operation: str, **arguments: Any) -> Any:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self._faults.before_call("aws", self.endpoint)
            return getattr(self.client(), operation)(**arguments)
        except InjectedFault as fault:
            raise ProviderError(f"operation error Secrets Manager: {operation}: {fault}") from None
        except ClientError as error:
            raise _AwsApiError(_error_code(error), f"operation error Secrets Manager: {error}") from None
        except BotoCoreError as error:
            raise ProviderError(f"operation error Secrets Manager: {operation}: {error}") from None

    def validate(self) -> None:
        """ESO only checks that credentials can be retrieved (they were, to build this provider)."""
        self.client()

    def push_secret(self, data: Mapping[str, bytes], push: PushData) -> None:
        value = extract_secret_data(data, push)
        spec = push_metadata(push.metadata)
        name = self._prefix + push.remote_key
        try:
            described = self._call("describe_secret", SecretId=name)
        except _AwsApiError as error:
            if error.code != "ResourceNotFoundException":
                raise
            self._create(name, _new_value(value, push.prop, None), spec)
            return
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags") or []}
        if tags.get(MANAGED_BY[0]) != MANAGED_BY[1]:
            raise ProviderError("secret not managed by external-secrets")
        current = None
        if described.get("VersionIdsToStages"):  # fails for a secret scheduled for deletion
            current = self._call("get_secret_value", SecretId=name)
        final = _new_value(value, push.prop, current)
        self._patch_tags(name, tags, spec)
        if current is not None and (current.get("SecretBinary") == final or _string_equals(current, final)):
            return
        arguments: JsonObject = {
            "SecretId": name,
            "ClientRequestToken": str(uuid.uuid4()) if current is not None else INITIAL_VERSION,
        }
        arguments.update(_payload(final, spec))
        self._call("put_secret_value", **arguments)

    def _create(self, name: str, value: bytes, spec: JsonObject) -> None:
        tags = {**(spec.get("tags") or {}), MANAGED_BY[0]: MANAGED_BY[1]}
        self._call(
            "create_secret",
            Name=name,
            Tags=[{"Key": key, "Value": value} for key, value in sorted(tags.items())],
            Description=spec.get("description") or "secret 'managed-by:external-secrets'",
            ClientRequestToken=INITIAL_VERSION,
            KmsKeyId=spec.get("kmsKeyID") or "alias/aws/secretsmanager",
            **_payload(value, spec),
        )

    def _patch_tags(self, name: str, current: dict[str, str], spec: JsonObject) -> None:
        desired = {**(spec.get("tags") or {}), MANAGED_BY[0]: MANAGED_BY[1]}
        removed = sorted(set(current) - set(desired))
        if removed and spec.get("tags") is not None:
            self._call("untag_resource", SecretId=name, TagKeys=removed)
        changed = {key: value for key, value in desired.items() if current.get(key) != value}
        if changed:
            self._call(
                "tag_resource", SecretId=name, Tags=[{"Key": k, "Value": v} for k, v in changed.items()]
            )

    def secret_exists(self, push: PushData) -> bool:
        try:
            self._call("get_secret_value", SecretId=self._prefix + push.remote_key)
        except _AwsApiError as error:
            if error.code == "ResourceNotFoundException":
                return False
            raise
        return True

    def delete_secret(self, push: PushData) -> None:
        name = self._prefix + push.remote_key
        try:
            current = self._call("get_secret_value", SecretId=name)
        except _AwsApiError as error:
            if error.code == "ResourceNotFoundException":
                return
            raise
        described = self._call("describe_secret", SecretId=name)
        tags = {tag["Key"]: tag["Value"] for tag in described.get("Tags") or []}
        if tags.get(MANAGED_BY[0]) != MANAGED_BY[1]:
            return
        self._call("delete_secret", SecretId=current["ARN"], **self._delete_options.arguments())


class _AwsApiError(ProviderError):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def _payload(value: bytes, spec: JsonObject) -> JsonObject:
    if spec.get("secretPushFormat", "binary") == "string":
        return {"SecretString": value.decode(errors="replace")}
    return {"SecretBinary": value}


def _string_equals(current: JsonObject, value: bytes) -> bool:
    text = current.get("SecretString")
    return isinstance(text, str) and text.encode() == value


def _new_value(value: bytes, prop: str, existing: JsonObject | None) -> bytes:
    """ESO's ``getNewSecretValue`` (``providers/v1/aws/secretsmanager/secretsmanager.go``).

    The value, or the current payload (``SecretBinary`` over ``SecretString``,
    as ``retrievePayload``) with ``prop`` set by sjson, whose error ESO ignores.
    """
    if not prop:
        return value
    current = b""
    if existing is not None:
        binary = existing.get("SecretBinary")
        text = existing.get("SecretString")
        current = bytes(binary) if binary is not None else (text or "").encode()
    try:
        if current and not sjson.valid(current):
            raise ProviderError(
                "PushSecret for aws secrets manager with a pushSecretData property requires a json secret"
            )
        return sjson.set_bytes(current, prop, value)
    except sjson.SjsonError:
        return current  # ``value, _ = sjson.SetBytes(...)``: on an error sjson hands the document back
    except sjson.NotEmulated as error:
        raise ProviderError(str(error)) from None
