"""Connection URLs in Ibis's forms, parsed once and never logged with a password."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from neve.errors import InvalidURLError

__all__ = ["DEFAULT_URL", "EngineURL", "parse_url"]

DEFAULT_URL = "duckdb:///./neve.duckdb"


@dataclass(frozen=True)
class EngineURL:
    """The parts of ``scheme://user:password@host:port/path?key=value``."""

    scheme: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    host: str | None = None
    port: int | None = None
    path: str = ""
    query: dict[str, str] = field(default_factory=dict)

    def redacted(self) -> str:
        """The URL with the password replaced by ``***``, safe for logs and errors."""
        auth = ""
        if self.username is not None:
            auth = quote(self.username, safe="")
            if self.password is not None:
                auth += ":***"
            auth += "@"
        hostport = self.host or ""
        if self.port is not None:
            hostport += f":{self.port}"
        query = "&".join(f"{k}={v}" for k, v in self.query.items())
        return f"{self.scheme}://{auth}{hostport}{self.path}" + (f"?{query}" if query else "")


def parse_url(url: str | None = None) -> EngineURL:
    """Parse ``url``; ``None`` means ``$NEVE_URL``, else :data:`DEFAULT_URL`."""
    if url is None:
        url = os.environ.get("NEVE_URL") or DEFAULT_URL
    if not isinstance(url, str) or "://" not in url:
        raise InvalidURLError(
            f"invalid engine URL {url!r}: expected scheme://..., "
            f"e.g. 'duckdb:///./neve.duckdb' or 'postgres://user:pw@host:5432/db'"
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
    parts = urlsplit(url)
    if parts.scheme.lower() == "duckdb":
        # A file path, not a server: "duckdb://:memory:" has no port to parse.
        return EngineURL(
            scheme="duckdb",
            host=unquote(parts.netloc) or None,
            path=unquote(parts.path),
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
        )
    try:
        port = parts.port
    except ValueError as exc:
        raise InvalidURLError(f"invalid port in engine URL {_strip_password(url)!r}: {exc}") from None
    return EngineURL(
        scheme=parts.scheme.lower(),
        username=unquote(parts.username) if parts.username is not None else None,
        password=unquote(parts.password) if parts.password is not None else None,
        host=parts.hostname,
        port=port,
        path=unquote(parts.path),
        query=dict(parse_qsl(parts.query, keep_blank_values=True)),
    )


def _strip_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)
