"""Shared by every part of the emulator: the Status error, timestamps, compact JSON."""
import json
import time
from types import MappingProxyType

REASONS = MappingProxyType({
    400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
    405: "MethodNotAllowed", 409: "Conflict", 410: "Expired", 415: "UnsupportedMediaType",
    422: "Invalid", 429: "TooManyRequests", 500: "InternalError",
    503: "ServiceUnavailable", 504: "Timeout"})


class ApiError(Exception):
    """Raised anywhere in request handling; turned into a Status response."""
    def __init__(self, code, message, reason=None, details=None, headers=None, metadata=None):
        super().__init__(message)
        self.code, self.message = code, message
        self.reason = reason or REASONS.get(code, "Unknown")
        self.details, self.headers, self.metadata = details, headers or {}, metadata

    def status(self):
        st = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata or {},
              "status": "Failure", "message": self.message, "reason": self.reason, "code": self.code}
        if self.details is not None:
            st["details"] = self.details
        return st


def now_ts():
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def dumps(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


class Abort(Exception):
    """Drop the connection without a proper HTTP ending."""

