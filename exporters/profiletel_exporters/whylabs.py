"""The ``whylabs`` exporter: uploads each profile to WhyLabs.

Two calls per profile: ``POST {endpoint}/v1/log/async`` asks for an upload URL for one
resource and dataset timestamp, then the serialized profile is ``PUT`` to that URL.
The WhyLabs resource id is the profile's dataset id, unless the ``dataset_id`` option
names one resource for every dataset.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from whylogs.api.writer import Writer
from whylogs.api.writer.writer import Writable

from profiletel import (
    ConfigurationError,
    ExportError,
    PermanentExportError,
    TransientExportError,
    hookimpl,
)

# The variable names live with every other one profiletel reads; this module reads them
# too, so that a WhyLabsExporter built directly is configured like one built by name.
from profiletel._config import (
    DEFAULT_WHYLABS_ENDPOINT,
    WHYLABS_API_ENDPOINT,
    WHYLABS_API_KEY,
    WHYLABS_DEFAULT_ORG_ID,
)

from ._common import as_bucket_profile, positive_seconds, scrub, status_error

try:
    import requests
except ImportError:  # whylogs itself needs requests, so only a broken install gets here
    requests = None  # type: ignore[assignment]

__all__ = ["WhyLabsExporter"]

_logger = logging.getLogger(__name__)

EXPORTER_NAME: Final = "whylabs"

DEFAULT_ENDPOINT: Final = DEFAULT_WHYLABS_ENDPOINT

DEFAULT_CONNECT_TIMEOUT_S: Final = 5.0
DEFAULT_READ_TIMEOUT_S: Final = 30.0
LOG_ASYNC_PATH: Final = "/v1/log/async"

_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "::1"})


def _env(name: str) -> str | None:
    value = os.environ.get(name)
    return value.strip() if value and value.strip() else None


class WhyLabsExporter(Writer):
    """Uploads profiles to WhyLabs over one ``requests.Session``, with TLS verification on,
    redirects off (so the API key never follows one to another host), and a
    ``(connect, read)`` timeout on every call.

    :param api_key: default ``WHYLABS_API_KEY``; required.
    :param org_id: default ``WHYLABS_DEFAULT_ORG_ID``, else the ``:org-…`` suffix of the
        key. The upload API takes the organization from the key, so it only names the
        organization in ``repr()`` and messages.
    :param endpoint: default ``WHYLABS_API_ENDPOINT``, else ``https://api.whylabsapp.com``.
    :param dataset_id: one WhyLabs resource id for every profile; default: each
        profile's own dataset id.
    :param connect_timeout_s: seconds to wait for a connection.
    :param read_timeout_s: seconds to wait for an answer.
    :raises ConfigurationError: without an API key, or for an endpoint that is not an
        http(s) URL.
    """

    exporter_name = EXPORTER_NAME

    def __init__(
        self,
        api_key: str | None = None,
        org_id: str | None = None,
        endpoint: str | None = None,
        dataset_id: str | None = None,
        connect_timeout_s: float | str = DEFAULT_CONNECT_TIMEOUT_S,
        read_timeout_s: float | str = DEFAULT_READ_TIMEOUT_S,
    ) -> None:
        if requests is None:
            raise ConfigurationError(
                "the whylabs exporter needs requests, which is not installed; "
                "run: pip install 'profiletel[whylabs]'"
            )
        key = api_key if api_key is not None else _env(WHYLABS_API_KEY)
        if not key or not str(key).strip():
            raise ConfigurationError(
                f"the whylabs exporter needs an API key: set {WHYLABS_API_KEY}, or pass "
                "api_key=... in its options"
            )
        self._api_key = str(key).strip()
        if not (self._api_key.isascii() and self._api_key.isprintable()):
            raise ConfigurationError(
                f"the whylabs API key holds characters an HTTP header cannot carry; copy "
                f"it again into {WHYLABS_API_KEY}"
            )
        suffix = self._api_key.rpartition(":")[2] if ":" in self._api_key else None
        self.org_id = org_id or _env(WHYLABS_DEFAULT_ORG_ID) or suffix

        self.endpoint = (endpoint or _env(WHYLABS_API_ENDPOINT) or DEFAULT_ENDPOINT).rstrip("/")
        parts = urlsplit(self.endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(
                f"the whylabs endpoint {self.endpoint!r} is not an http(s) URL; fix "
                f"{WHYLABS_API_ENDPOINT} or the endpoint option"
            )
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK_HOSTS:
            _logger.warning(
                "The whylabs endpoint %s is plain http: the API key travels unencrypted. "
                "Use an https endpoint.",
                self.endpoint,
            )
        self.dataset_id = dataset_id
        self._timeout = (
            positive_seconds(EXPORTER_NAME, "connect_timeout_s", connect_timeout_s),
            positive_seconds(EXPORTER_NAME, "read_timeout_s", read_timeout_s),
        )
        self._session = requests.Session()
        self._session.verify = True

    def write(
        self, file: Writable, dest: str | None = None, **kwargs: Any
    ) -> tuple[bool, str]:
        """Upload ``file`` (``dest`` is ignored: WhyLabs names what it stores).

        :returns: ``(True, "<resource>/<upload id>")``.
        :raises TransientExportError: when WhyLabs may accept it later.
        :raises PermanentExportError: when it will not without a change of configuration.
        """
        profile = as_bucket_profile(file, EXPORTER_NAME)
        resource = self.dataset_id or profile.dataset_id
        if not (resource.isascii() and resource.isprintable()):
            raise PermanentExportError(
                f"whylabs: dataset id {resource!r} cannot be a WhyLabs resource id; log under "
                "the resource id (such as model-1), or set the whylabs dataset_id option"
            )
        body = {
            "datasetTimestamp": profile.bucket_start_ms,
            "segmentTags": [{"key": key, "value": value} for key, value in profile.segment],
        }
        answer = self._send(
            "POST",
            self.endpoint + LOG_ASYNC_PATH,
            f"POST {LOG_ASYNC_PATH} for resource {resource}",
            resource,
            headers={"X-API-Key": self._api_key, "X-WHYLABS-RESOURCE": resource},
            json=body,
        )
        upload_id, upload_url = self._upload_target(answer, resource)

        self._send(
            "PUT",
            upload_url,
            f"PUT of the profile of resource {resource} to its upload URL",
            resource,
            headers={"Content-Type": "application/octet-stream"},
            data=profile.serialize(),
            secret=urlsplit(upload_url).query,
        )
        return True, f"{resource}/{upload_id}"

    def _upload_target(self, answer: Any, resource: str) -> tuple[str, str]:
        try:
            payload = answer.json()
            upload_url = payload["uploadUrl"]
            upload_id = str(payload.get("id", ""))
        except (ValueError, KeyError, TypeError, AttributeError):
            upload_url = None
        if not isinstance(upload_url, str) or urlsplit(upload_url).scheme not in ("http", "https"):
            # A proxy or gateway answering in WhyLabs' place; it may be gone next time.
            raise TransientExportError(
                f"whylabs: POST {LOG_ASYNC_PATH} for resource {resource} answered HTTP "
                f"{answer.status_code} without an uploadUrl"
            )
        return upload_id, upload_url

    def _send(
        self, method: str, url: str, what: str, resource: str, *, secret: str = "",
        **kwargs: Any,
    ) -> Any:
        try:
            response = self._session.request(
                method, url, timeout=self._timeout, verify=True, allow_redirects=False, **kwargs
            )
        except requests.exceptions.RequestException as exc:
            detail = scrub(f"{type(exc).__name__}: {exc}", (self._api_key, secret))
            raise _network_error(f"whylabs: {what} failed ({detail})", exc) from None
        status = response.status_code
        if 200 <= status < 300:
            return response
        # A server may echo what it was sent, the key included, in its reason phrase.
        reason = scrub(response.reason or "", (self._api_key, secret))
        message = f"whylabs: {what} answered HTTP {status} {reason}".rstrip()
        if method == "PUT" and status in (401, 403):
            # Upload URLs are signed and expire; the next attempt asks for a fresh one.
            raise TransientExportError(
                f"{message}; the upload URL may have expired, so it is asked for again"
            )
        raise status_error(
            message, status, _hint(status, resource), response.headers.get("Retry-After")
        )

    def option(self, **kwargs: Any) -> WhyLabsExporter:
        if kwargs.get("dataset_id"):
            self.dataset_id = str(kwargs["dataset_id"])
        return self

    def close(self) -> None:
        """Close the session's pooled connections."""
        self._session.close()

    def __repr__(self) -> str:
        return (
            f"WhyLabsExporter(endpoint={_without_userinfo(self.endpoint)!r}, "
            f"org_id={self.org_id!r}, "
            f"dataset_id={self.dataset_id!r})"
        )


def _without_userinfo(url: str) -> str:
    """``url`` without any ``user:password@`` part, for display."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc="***@" + parts.netloc.rsplit("@", 1)[1]).geturl()


def _hint(status: int, resource: str) -> str:
    if status in (401, 403):
        return (
            f"check {WHYLABS_API_KEY} (or the api_key option), and that the key belongs to "
            f"the organization that owns resource {resource}"
        )
    if status == 404:
        return (
            f"resource {resource} or the endpoint was not found: check the dataset id (it is "
            f"the WhyLabs resource id) and {WHYLABS_API_ENDPOINT}"
        )
    if 300 <= status < 400:
        return f"the endpoint redirects: set {WHYLABS_API_ENDPOINT} to where it redirects to"
    return f"check the dataset id, {WHYLABS_API_ENDPOINT} and the profile's size"


def _network_error(message: str, exc: Exception) -> ExportError:
    errors = requests.exceptions
    if isinstance(exc, errors.SSLError):
        return PermanentExportError(
            f"{message}; TLS verification failed: check {WHYLABS_API_ENDPOINT}, or point "
            "REQUESTS_CA_BUNDLE at your certificate authority"
        )
    if isinstance(exc, (errors.InvalidURL, errors.InvalidSchema, errors.MissingSchema,
                        errors.InvalidHeader)):
        return PermanentExportError(f"{message}; check {WHYLABS_API_ENDPOINT}")
    # Refused or reset connections, timeouts and broken answers may all pass.
    return TransientExportError(message)


@hookimpl
def profiletel_exporters() -> Mapping[str, Any]:
    return {EXPORTER_NAME: WhyLabsExporter}
