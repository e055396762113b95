"""Connection URLs in Ibis's forms, parsed once and never logged with a secret.

A URL can carry secrets in two places: ``user:password@`` and query parameters
(``?password=``, ``sslpassword``, Snowflake's ``private_key_file_pwd``, ``token``,
``passcode``, ...). :meth:`EngineURL.redacted` masks both, :meth:`EngineURL.scrub`
removes them from text a driver produced, and a URL that cannot be parsed is
never echoed: its secrets cannot be told from the rest.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

from neve.errors import InvalidURLError

__all__ = ["DEFAULT_URL", "EngineURL", "parse_url"]

DEFAULT_URL = "duckdb:///./neve.duckdb"

MASK = "***"
# Query keys whose values are masked, matched anywhere in the key, case-insensitively.
# Broad on purpose: masking a harmless value (a key file's path) costs nothing.
_SECRET_KEY = re.compile(r"pass|pwd|secret|token|key|credential|auth|signature|cookie", re.IGNORECASE)


def is_secret_key(key: str) -> bool:
    return bool(_SECRET_KEY.search(key))


@dataclass(frozen=True)
class EngineURL:
    """The parts of ``scheme://user:password@host:port/path?key=value``."""

    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: dict[str, str] = field(default_factory=dict, repr=False)

    def __repr__(self) -> str:
        return f"EngineURL({self.redacted()!r})"

    def redacted(self) -> str:
        """The URL with the password and every secret-looking query value replaced by
        ``***``, safe for logs and errors."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += f":{MASK}"
            auth += "@"
        hostport = self.host or ""
        if self.port is not None:
            hostport += f":{self.port}"
        secrets = self.secrets()
        query = "&".join(
            f"{quote_plus(k)}={MASK if is_secret_key(k) or any(x in v for x in secrets) else quote_plus(v)}"
            for k, v in self.query.items()
        )
        return f"{self.scheme}://{auth}{hostport}{self.path}" + (f"?{query}" if query else "")

    def secrets(self) -> list[str]:
        """The password and the values of secret-looking query keys, longest first."""
        found = {v for k, v in self.query.items() if is_secret_key(k) and v}
        if self.password:
            found.add(self.password)
        return sorted(found, key=len, reverse=True)

    def scrub(self, text: str) -> str:
        """``text`` (e.g. a driver's error message) with every secret of this URL masked,
        in the raw and the URL-encoded forms a driver may echo."""
        for secret in self.secrets():
            for form in {secret, quote(secret, safe=""), quote_plus(secret)}:
                text = text.replace(form, MASK)
        return text


def parse_url(url: str | None = None) -> EngineURL:
    """Parse ``url``; ``None`` means ``$NEVE_URL``, else :data:`DEFAULT_URL`.

    Errors never quote ``url``: a malformed URL (``postgres:/user:pw@host/db``,
    ``user:pw@host``) cannot be split into parts that are safe to show."""
    if url is None:
        url = os.environ.get("NEVE_URL") or DEFAULT_URL
    if not isinstance(url, str):
        raise InvalidURLError(f"engine URL must be a string, got {type(url).__name__}")
    if "://" not in url:
        raise InvalidURLError(
            f"invalid engine URL ({_shape(url)}): expected scheme://..., e.g. "
            f"'duckdb:///./neve.duckdb' or 'postgres://user:pw@host:5432/db'"
        )
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("spark", "pyspark") and rest.startswith("local"):
        # A Spark master such as local[4] is not a host: its brackets would parse as IPv6.
        netloc, slash, tail = rest.partition("/")
        parts = urlsplit(f"{scheme}:///{tail}" if slash else f"{scheme}://")
        return EngineURL(
            scheme=scheme.lower(),
            host=netloc.partition("?")[0],
            path=unquote(parts.path) if slash else "",
            query=dict(parse_qsl(parts.query if slash else netloc.partition("?")[2], keep_blank_values=True)),
        )
    try:
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
    except ValueError as exc:
        raise InvalidURLError(f"invalid engine URL ({_shape(url)}): {type(exc).__name__}") from None
    if parts.scheme.lower() == "duckdb":
        # A file path, not a server: "duckdb://:memory:" has no port to parse.
        return EngineURL(scheme="duckdb", host=unquote(parts.netloc) or None, path=unquote(parts.path), query=query)
    try:
        port = parts.port
    except ValueError:
        raise InvalidURLError(
            f"invalid port in the {parts.scheme!r} engine URL for host {parts.hostname!r}: "
            f"expected a number from 1 to 65535"
        ) from None
    return EngineURL(
        scheme=parts.scheme.lower(),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=parts.hostname,
        port=port,
        path=unquote(parts.path),
        query=query,
    )


def _shape(url: str) -> str:
    """What a malformed URL looks like, without any of its text."""
    if not url:
        return "an empty string"
    hints = [f"{len(url)} characters"]
    if re.match(r"[A-Za-z][A-Za-z0-9+.-]*:/(?!/)", url):
        hints.append("one slash after the scheme instead of two")
    elif "@" in url:
        hints.append("no scheme")
    return ", ".join(hints) + "; not shown as it may hold a password"
