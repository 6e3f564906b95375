"""The two discovery documents MSAL-based (sync) credentials read before asking for a token."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import httpx


def openid_configuration(origin: str, tenant_id: str) -> dict[str, Any]:
    """The tenant's ``/v2.0/.well-known/openid-configuration``."""
    base = f"{origin}/{tenant_id}"
    return {
        "token_endpoint": f"{base}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{base}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": f"{base}/v2.0",
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{origin}/oidc/userinfo",
        "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
        "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nonce", "tid", "ver"],
        "tenant_region_scope": "EU",
        "cloud_instance_name": "sandbox.invalid",
        "cloud_graph_host_name": "graph.sandbox.invalid",
        "msgraph_host": "graph.sandbox.invalid",
    }


def instance_discovery(request: httpx.Request, origin: str) -> dict[str, Any]:
    """``/common/discovery/instance``: this host is its own and only alias."""
    endpoint = request.url.params.get("authorization_endpoint", "")
    tenant = ([s for s in urlsplit(endpoint).path.split("/") if s] or ["common"])[0]
    host = urlsplit(origin).netloc
    body = {
        "tenant_discovery_endpoint": f"{origin}/{tenant}/v2.0/.well-known/openid-configuration",
        "api-version": "1.1",
        "metadata": [
            {"preferred_network": host, "preferred_cache": host, "aliases": [host]},
        ],
    }
    return body
