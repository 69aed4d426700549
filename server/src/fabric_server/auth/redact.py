"""Keep mailed tokens and OAuth codes out of access logs.

Links such as `/v1/auth/verify?token=…` put secrets in the query string, which uvicorn's
access log would otherwise print whole.
"""

from __future__ import annotations

import logging
import re

_SECRET_PARAM = re.compile(
    r"(?P<name>(?:^|[?&])(?:token|code|state|access_token|refresh_token)=)[^&\s\"]*"
)
ACCESS_LOGGER = "uvicorn.access"


def redact(text: str) -> str:
    return _SECRET_PARAM.sub(r"\g<name>[redacted]", text)


class RedactSecrets(logging.Filter):
    """Rewrites the arguments of a log record so secret query parameters are hidden."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def install_access_log_redaction() -> None:
    """Add the filter to the access logger (once, however often the server starts)."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, RedactSecrets) for f in logger.filters):
        logger.addFilter(RedactSecrets())
