"""The one family of errors pushdesk raises on purpose, so a caller can catch by meaning.

    PushdeskError                   anything pushdesk says went wrong, with a message for people
    ├── CliError                    a command's one-line answer to the operator (exit non-zero)
    ├── ConfigError                 settings that cannot be used (config.py)
    ├── Invalid                     one input's problem, naming its field (inputs.py; ValueError)
    ├── ApiError                    an HTTP answer: status, code, message, field (api/errors.py)
    ├── StoreError                  a store-level problem worth a clear message (store/base.py)
    │   └── EndpointTaken           the endpoint belongs to another reader
    ├── VapidKeyError               a key file missing, unreadable or readable by others
    ├── UnsignableClaim             py_vapid refuses an audience or subject (also ValueError)
    ├── InvalidKey                  a reader's p256dh or auth cannot be used (also ValueError)
    ├── PayloadTooLarge             an alert's link alone does not fit a push message
    ├── BadTarget                   an endpoint path no request line can carry (also ValueError)
    └── TransportError              no usable answer from a push service: retry that reader
        ├── ConnectFailed           no connection could be opened (also OSError; `cause`)
        ├── ConnectionLost          the connection closed before the answer was in
        ├── ProtocolError           the bytes were not a well-formed HTTP/1.1 answer
        └── RequestTimedOut         no answer within the request's time (also TimeoutError)

Each class is defined where its rule lives and documented there; this module holds the base
and the operator's error, which every room may raise without reaching into another.
"""

from __future__ import annotations


class PushdeskError(Exception):
    """Base of every error pushdesk raises on purpose. Anything else that escapes is a bug."""


class CliError(PushdeskError):
    """A one-line message for the operator; the command exits non-zero."""


class TransportError(PushdeskError):
    """No usable answer came from a push service: the request may be tried again."""
