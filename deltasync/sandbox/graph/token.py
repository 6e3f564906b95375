"""Simulated Entra token endpoint (client credentials) and the discovery documents MSAL reads."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import httpx
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.serialization import Encoding

from deltasync.sandbox.graph.discovery import instance_discovery, openid_configuration
from deltasync.sandbox.graph.wire import SimRequest, json_response, log_request
from deltasync.sandbox.graph.wire import origin as origin_of


@dataclass(frozen=True)
class IssuedToken:
    """What the token endpoint remembers about an access token it issued."""

    client_id: str
    scope: str
    expires_at: float


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class _TokenError(Exception):
    """Raised inside request handling; becomes an AADSTS error response."""

    def __init__(self, status: int, error: str, aadsts: int, description: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.aadsts = aadsts
        self.description = description


class TokenSim:
    """The Entra token endpoint (client credentials) for one app registration.

    Serves ``POST /{tenant}/oauth2/v2.0/token`` (``client_secret`` in the form or HTTP
    Basic, or a ``client_assertion`` signed by a certificate registered with
    :meth:`add_certificate`), plus the two discovery documents MSAL-based (sync) credentials
    read. Errors look like AADSTS errors and never echo what the client sent.

    ``roles`` holds the application permissions granted (with admin consent) to the app;
    every access token carries them in its ``roles`` claim, as Entra's do. A GraphSim built
    with this TokenSim enforces the same set (its ``granted`` is this very set).
    """

    def __init__(
        self,
        tenant_id: str,
        client_id: str,
        client_secret: str,
        *,
        ttl_s: int = 3600,
        now: Callable[[], float] = time.time,
        authority: str = "https://login.sandbox.invalid",
    ) -> None:
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._secret = client_secret
        self.ttl_s = ttl_s
        self.authority = authority.rstrip("/")
        self.issued: dict[str, IssuedToken] = {}
        self.requests: list[SimRequest] = []
        self._now = now
        self._lock = threading.RLock()
        self._certificates: dict[str, x509.Certificate] = {}
        self._faults: list[list[int]] = []
        self.roles: set[str] = {"User.Read.All", "GroupMember.Read.All"}

    def __repr__(self) -> str:
        return f"TokenSim(tenant_id={self.tenant_id!r}, client_id={self.client_id!r})"

    @property
    def request_count(self) -> int:
        """Requests received (token and discovery)."""
        return len(self.requests)

    def add_certificate(self, certificate_pem: bytes) -> None:
        """Accept client assertions signed by this certificate's key (CertificateCredential)."""
        cert = x509.load_pem_x509_certificate(certificate_pem)
        der = cert.public_bytes(Encoding.DER)
        with self._lock:
            self._certificates[_b64url(hashlib.sha1(der).digest())] = cert
            self._certificates[_b64url(hashlib.sha256(der).digest())] = cert

    def revoke_all(self) -> None:
        """Invalidate every access token issued so far (Graph then answers 401)."""
        with self._lock:
            self.issued.clear()

    def fail_next(self, status: int = 503, *, n: int = 1) -> None:
        """Answer the next ``n`` token requests with this status (an Entra outage)."""
        with self._lock:
            self._faults.append([status, n])

    def validate(self, token: str, *, audiences: Iterable[str] = ()) -> str | None:
        """Why this bearer token is not acceptable, or None when it is."""
        with self._lock:
            issued = self.issued.get(token)
        if issued is None:
            return "Invalid access token: unknown or revoked token."
        if issued.expires_at <= self._now():
            return "Lifetime validation failed, the token is expired."
        resource = issued.scope.removesuffix("/.default").rstrip("/").lower()
        accepted = {a.rstrip("/").lower() for a in audiences}
        accepted |= {"https://graph.microsoft.com", "00000003-0000-0000-c000-000000000000"}
        if resource not in accepted:
            return "Access token validation failure. Invalid audience."
        return None

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Answer one request to the token endpoint or a discovery document (thread-safe)."""
        with self._lock:
            correlation = request.headers.get("client-request-id") or str(uuid.uuid4())
            trace = str(uuid.uuid4())
            headers = {
                "Cache-Control": "no-store, no-cache",
                "Pragma": "no-cache",
                "x-ms-request-id": trace,
                "client-request-id": correlation,
            }
            try:
                response = self._respond(request, headers)
            except _TokenError as e:
                stamp = datetime.fromtimestamp(self._now(), UTC).strftime("%Y-%m-%d %H:%M:%SZ")
                description = (
                    f"AADSTS{e.aadsts}: {e.description} Trace ID: {trace} "
                    f"Correlation ID: {correlation} Timestamp: {stamp}"
                )
                body = {
                    "error": e.error,
                    "error_description": description,
                    "error_codes": [e.aadsts],
                    "timestamp": stamp,
                    "trace_id": trace,
                    "correlation_id": correlation,
                    "error_uri": f"{origin_of(str(request.url))}/error?code={e.aadsts}",
                }
                response = json_response(e.status, body, headers)
            self.requests.append(log_request(request, response.status_code))
            return response

    def _respond(self, request: httpx.Request, headers: dict[str, str]) -> httpx.Response:
        if self._faults:
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] <= 0:
                self._faults.pop(0)
            raise _TokenError(
                fault[0],
                "temporarily_unavailable",
                50196,
                "The server is temporarily unavailable. Please retry later.",
            )
        origin = origin_of(str(request.url))
        segments = [s for s in request.url.path.split("/") if s]
        if request.method == "GET" and segments[:3] == ["common", "discovery", "instance"]:
            return json_response(200, instance_discovery(request, origin), headers)
        if not segments:
            raise _TokenError(404, "invalid_request", 90019, "No tenant-identifying information.")
        if segments[0] != self.tenant_id:
            raise _TokenError(
                400,
                "invalid_request",
                90002,
                f"Tenant '{segments[0]}' not found. Check to make sure you have the correct "
                "tenant ID and are signing into the correct cloud.",
            )
        rest = segments[1:]
        if request.method == "GET" and rest == ["v2.0", ".well-known", "openid-configuration"]:
            return json_response(200, openid_configuration(origin, self.tenant_id), headers)
        if request.method == "POST" and rest == ["oauth2", "v2.0", "token"]:
            return self._token(request, origin, headers)
        raise _TokenError(404, "invalid_request", 900561, "The endpoint does not exist.")

    def _token(
        self, request: httpx.Request, origin: str, headers: dict[str, str]
    ) -> httpx.Response:
        raw = request.read().decode("utf-8", "replace")
        form = dict(parse_qsl(raw, keep_blank_values=True))
        if form.get("grant_type") != "client_credentials":
            raise _TokenError(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type.",
            )
        client_id = form.get("client_id", "")
        basic_secret: str | None = None
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            try:
                decoded = base64.b64decode(auth[6:]).decode("utf-8")
            except ValueError:
                decoded = ""
            basic_client, _, basic_secret = decoded.partition(":")
            client_id = client_id or basic_client
        if not hmac.compare_digest(client_id.encode(), self.client_id.encode()):
            raise _TokenError(
                400,
                "unauthorized_client",
                700016,
                f"Application with the given identifier was not found in the directory "
                f"'{self.tenant_id}'. This can happen if the application has not been installed "
                "by the administrator of the tenant.",
            )
        secret = form.get("client_secret", basic_secret)
        assertion = form.get("client_assertion")
        if secret is not None:
            if not hmac.compare_digest(secret.encode(), self._secret.encode()):
                raise _TokenError(
                    401,
                    "invalid_client",
                    7000215,
                    "Invalid client secret provided. Ensure the secret being sent in the "
                    "request is the client secret value, not the client secret ID, for a "
                    "secret added to the app.",
                )
        elif assertion is not None:
            self._check_assertion(assertion, f"{origin}/{self.tenant_id}/oauth2/v2.0/token")
        else:
            raise _TokenError(
                401,
                "invalid_client",
                7000216,
                "'client_assertion', 'client_secret' or 'request' is required for the "
                "'client_credentials' grant type.",
            )
        scope = form.get("scope", "").strip()
        if not scope:
            raise _TokenError(
                400,
                "invalid_request",
                900144,
                "The request body must contain the following parameter: 'scope'.",
            )
        if len(scope.split()) != 1 or not scope.endswith("/.default"):
            raise _TokenError(
                400,
                "invalid_scope",
                1002012,
                "The provided value for scope is not valid. Client credential flows must "
                "have a scope value with /.default suffixed to the resource identifier.",
            )
        now = self._now()
        claims = {
            "aud": scope.removesuffix("/.default"),
            "iss": f"{origin}/{self.tenant_id}/v2.0",
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now + self.ttl_s),
            "appid": self.client_id,
            "tid": self.tenant_id,
            "roles": sorted(self.roles),
            "jti": secrets.token_urlsafe(16),
        }
        token = ".".join(
            (
                _b64url(json.dumps({"typ": "JWT", "alg": "RS256"}).encode()),
                _b64url(json.dumps(claims).encode()),
                _b64url(secrets.token_bytes(64)),
            )
        )
        self.issued[token] = IssuedToken(self.client_id, scope, now + self.ttl_s)
        body = {
            "token_type": "Bearer",
            "expires_in": self.ttl_s,
            "ext_expires_in": self.ttl_s,
            "access_token": token,
        }
        return json_response(200, body, headers)

    def _check_assertion(self, assertion: str, endpoint: str) -> None:
        def reject(why: str) -> _TokenError:
            return _TokenError(401, "invalid_client", 700027, f"Client assertion failed: {why}.")

        parts = assertion.split(".")
        if len(parts) != 3:
            raise reject("not a signed JWT")
        try:
            header = json.loads(_b64url_decode(parts[0]))
            payload = json.loads(_b64url_decode(parts[1]))
            signature = _b64url_decode(parts[2])
        except ValueError:
            raise reject("the JWT cannot be decoded") from None
        if payload.get("iss") != self.client_id or payload.get("sub") != self.client_id:
            raise reject("iss and sub must be the client id")
        audience = payload.get("aud")
        audiences = audience if isinstance(audience, list) else [audience]
        if not any(str(a).rstrip("/").lower() == endpoint.lower() for a in audiences):
            raise reject("aud must be the token endpoint")
        if float(payload.get("exp", 0)) <= self._now():
            raise reject("the assertion is expired")
        thumbprint = str(header.get("x5t#S256") or header.get("x5t") or "").rstrip("=")
        cert = self._certificates.get(thumbprint)
        if cert is None:
            raise reject("no certificate with this thumbprint is registered for the app")
        key = cert.public_key()
        if not isinstance(key, rsa.RSAPublicKey):
            raise reject("the certificate key is not RSA")
        signed = f"{parts[0]}.{parts[1]}".encode("ascii")
        alg = header.get("alg")
        try:
            if alg == "RS256":
                key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            elif alg == "PS256":
                pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32)
                key.verify(signature, signed, pss, hashes.SHA256())
            else:
                raise reject(f"unsupported alg {alg!r}")
        except InvalidSignature:
            raise reject("the signature is invalid") from None
