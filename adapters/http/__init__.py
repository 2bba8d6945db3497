"""HTTP: VT's API for its case system (and, later, the dashboard)."""

from adapters.http.api import API_PREFIX, create_api_app
from adapters.http.auth import ApiTokens, hash_token, load_api_tokens, new_token

__all__ = [
    "API_PREFIX",
    "ApiTokens",
    "create_api_app",
    "hash_token",
    "load_api_tokens",
    "new_token",
]
