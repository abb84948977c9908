"""The ``s3`` exporter: one object per profile in an S3 (or S3-compatible) bucket.

boto3 is imported when an exporter is created, not when this plugin loads, so that an
install without the ``s3`` extra still lists the exporter and says what to install.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Final

from whylogs.api.writer import Writer
from whylogs.api.writer.writer import Writable

from profiletel import (
    BucketProfile,
    ConfigurationError,
    ExportError,
    PermanentExportError,
    TransientExportError,
    hookimpl,
    safe_path_part,
)

from ._common import as_bucket_profile, is_transient_status, parse_retry_after, positive_seconds

if TYPE_CHECKING:
    from botocore.client import BaseClient

__all__ = ["S3Exporter", "classify_s3_error", "object_key"]

EXPORTER_NAME: Final = "s3"
DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_READ_TIMEOUT_S: Final = 30.0

# S3 error codes that may succeed later, whatever their HTTP status (RequestTimeout is a 400).
_TRANSIENT_CODES: Final = frozenset({
    "SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable", "Throttling",
    "ThrottlingException", "RequestLimitExceeded", "RequestThrottled",
})

# What to fix for the permanent failures a misconfigured exporter meets first.
_HINTS: Final = {
    "NoSuchBucket": "the bucket does not exist: create it, or fix the bucket option",
    "AccessDenied": "the credentials may not write there: grant s3:PutObject on the bucket "
    "and prefix, or use other credentials",
    "AllAccessDisabled": "access to the bucket is disabled: use another bucket",
    "InvalidAccessKeyId": "the access key id is unknown to the store: check "
    "AWS_ACCESS_KEY_ID or the AWS profile in use",
    "SignatureDoesNotMatch": "the secret key does not match the access key id: check "
    "AWS_SECRET_ACCESS_KEY or the AWS profile in use",
    "ExpiredToken": "the session credentials have expired: refresh them",
    "InvalidToken": "the session token is invalid: refresh the credentials",
    "PermanentRedirect": "the bucket is in another region: set the region option",
    "AuthorizationHeaderMalformed": "the bucket is in another region: set the region option",
}


def object_key(profile: BucketProfile, prefix: str = "", name: str | None = None) -> str:
    """``<prefix>/<dataset_id>/<YYYY>/<MM>/<DD>/<HH>/<name>`` for ``profile``.

    Every part is passed through :func:`profiletel.safe_path_part`; the prefix is split on
    ``/`` first and its empty parts dropped. ``name`` defaults to
    :meth:`BucketProfile.file_name`, which holds the profile id: keys are unique across
    processes and hosts, and a retry of one profile overwrites its own earlier attempt.
    """
    bucket = datetime.fromtimestamp(profile.bucket_start_ms / 1000, tz=timezone.utc)
    parts = [safe_path_part(part) for part in prefix.split("/") if part]
    parts.append(safe_path_part(profile.dataset_id))
    parts.extend(bucket.strftime(f"%{field}") for field in "YmdH")
    parts.append(safe_path_part(name) if name else profile.file_name())
    return "/".join(parts)


class S3Exporter(Writer):
    """Uploads each profile, from memory, to ``s3://<bucket>/<key>`` (see :func:`object_key`).

    Credentials come from boto3's usual chain (environment, shared files, instance
    role). boto3 makes one attempt per call: the retry middleware owns retries, so every
    attempt is counted and every failure classified in one place.

    :param bucket: the bucket name (required).
    :param prefix: key prefix, ``/``-separated; default none.
    :param endpoint_url: for S3-compatible stores (MinIO, Ceph, a local test server).
    :param region: the bucket's region; default from boto3's configuration.
    :param client: a ready boto3 S3 client; ``endpoint_url``, ``region`` and the
        timeouts are then ignored.
    :param connect_timeout_s: seconds to wait for a connection.
    :param read_timeout_s: seconds to wait for an answer.
    :raises ConfigurationError: without a bucket, or when boto3 is not installed.
    """

    exporter_name = EXPORTER_NAME

    def __init__(
        self,
        bucket: str | None = None,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        client: BaseClient | None = None,
        connect_timeout_s: float | str = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float | str = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if not isinstance(bucket, str) or not bucket.strip():
            raise ConfigurationError(
                "the s3 exporter needs a bucket: pass bucket=... (in configure(), "
                "exporter_options={'s3': {'bucket': ...}}; on the command line, "
                "--option bucket=...)"
            )
        if not isinstance(prefix, str):
            raise ConfigurationError(f"the s3 prefix must be a str, got {type(prefix).__name__}")
        self.bucket = bucket.strip()
        self.prefix = "/".join(part for part in prefix.split("/") if part)
        self.endpoint_url = endpoint_url
        self.region = region
        self._client = client if client is not None else _make_client(
            endpoint_url,
            region,
            positive_seconds(EXPORTER_NAME, "connect_timeout_s", connect_timeout_s),
            positive_seconds(EXPORTER_NAME, "read_timeout_s", read_timeout_s),
        )

    def write(
        self, file: Writable, dest: str | None = None, **kwargs: Any
    ) -> tuple[bool, str]:
        """Upload ``file``; ``dest`` replaces the object's file name.

        :returns: ``(True, "s3://bucket/key")``.
        :raises TransientExportError: when the store may accept it later.
        :raises PermanentExportError: when it will not without a change of configuration.
        """
        profile = as_bucket_profile(file, EXPORTER_NAME)
        key = object_key(profile, self.prefix, dest)
        try:
            self._client.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=profile.serialize(),
                ContentType="application/octet-stream",
            )
        except Exception as exc:
            raise classify_s3_error(exc, self.bucket, key) from exc
        return True, f"s3://{self.bucket}/{key}"

    def iter_objects(self) -> Iterator[tuple[str, bytes]]:
        """Every ``*.bin`` object under the prefix, as ``(s3 URL, body)``, in key order.

        For readers such as ``profiletel report``, with the same client and settings as
        the uploads.

        :raises OSError: when the bucket cannot be listed or an object read.
        """
        prefix = f"{self.prefix}/" if self.prefix else ""
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix
            )
            keys = sorted(item["Key"] for page in pages for item in page.get("Contents", []))
            for key in keys:
                if key.endswith(".bin"):
                    body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    yield f"s3://{self.bucket}/{key}", body
        except Exception as exc:
            raise OSError(
                f"cannot read s3://{self.bucket}/{prefix}: {type(exc).__name__}: {exc}; "
                "check the bucket, prefix, endpoint_url, region and credentials"
            ) from exc

    def option(self, **kwargs: Any) -> S3Exporter:
        if kwargs.get("bucket"):
            self.bucket = str(kwargs["bucket"])
        if kwargs.get("prefix") is not None:
            self.prefix = "/".join(part for part in str(kwargs["prefix"]).split("/") if part)
        return self

    def __repr__(self) -> str:
        return (
            f"S3Exporter(bucket={self.bucket!r}, prefix={self.prefix!r}, "
            f"endpoint_url={self.endpoint_url!r}, region={self.region!r})"
        )


def _make_client(
    endpoint_url: str | None, region: str | None, connect_timeout_s: float, read_timeout_s: float
) -> BaseClient:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as exc:
        raise ConfigurationError(
            f"the s3 exporter needs boto3, which is not installed ({exc}); "
            "run: pip install 'profiletel[s3]'"
        ) from None
    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": 1},
    )
    return boto3.client("s3", endpoint_url=endpoint_url, region_name=region, config=config)


def classify_s3_error(exc: Exception, bucket: str, key: str) -> ExportError:
    """Map what boto3 raised on a put to a transient or permanent export failure.

    Throttling, ``SlowDown``, 408, 429, 5xx, connection failures and timeouts are
    transient; missing bucket, refused or unknown credentials and every other 4xx are
    permanent. Anything unrecognised is transient, like in the middleware.
    """
    from botocore import exceptions as boto_errors

    where = f"s3://{bucket}/{key}"
    if isinstance(exc, boto_errors.ClientError):
        error = exc.response.get("Error", {})
        metadata = exc.response.get("ResponseMetadata", {})
        code = str(error.get("Code", "Unknown"))
        status = int(metadata.get("HTTPStatusCode") or 0)
        message = f"s3 put of {where} failed with {code} (HTTP {status or 'unknown'})"
        if code in _TRANSIENT_CODES or not status or is_transient_status(status):
            headers = metadata.get("HTTPHeaders") or {}
            return TransientExportError(
                message, retry_after_s=parse_retry_after(headers.get("retry-after"))
            )
        hint = _HINTS.get(code, "fix the s3 exporter's bucket, prefix, region or credentials")
        return PermanentExportError(f"{message}; {hint}")
    if isinstance(exc, (boto_errors.NoCredentialsError, boto_errors.PartialCredentialsError)):
        return PermanentExportError(
            f"s3 put of {where} failed: {exc}; give boto3 credentials (AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, an AWS profile, or an instance role)"
        )
    if isinstance(exc, boto_errors.SSLError):
        return PermanentExportError(
            f"s3 put of {where} failed TLS verification ({exc}); check endpoint_url, or point "
            "AWS_CA_BUNDLE at the store's certificate authority"
        )
    if isinstance(exc, boto_errors.ParamValidationError):
        return PermanentExportError(f"s3 put of {where} was rejected by boto3: {exc}")
    return TransientExportError(f"s3 put of {where} failed: {type(exc).__name__}: {exc}")


@hookimpl
def profiletel_exporters() -> Mapping[str, Any]:
    return {EXPORTER_NAME: S3Exporter}
