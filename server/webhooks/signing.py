"""Standard Webhooks signatures (https://www.standardwebhooks.com), made by the `standardwebhooks` library.

Every request carries `webhook-id` (the delivery's id, the same on every attempt: receivers
deduplicate on it), `webhook-timestamp` (Unix seconds of this attempt) and `webhook-signature`
`v1,<base64 HMAC-SHA256 of "id.timestamp.body" keyed with the secret's bytes>`. The secret is
`whsec_` + base64 of 32 random bytes.
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"


def new_secret() -> str:
    """A fresh endpoint secret: `whsec_` and 32 random bytes in base64."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def new_message_id() -> str:
    """A delivery's `webhook-id`: `msg_` and 32 hex digits."""
    return "msg_" + secrets.token_hex(16)


def signed_headers(secret: str, message_id: str, body: str, at: datetime) -> dict[str, str]:
    """The three Standard Webhooks headers for sending `body` now (`at`, whole seconds)."""
    moment = at.astimezone(UTC).replace(microsecond=0)
    signature = Webhook(secret).sign(message_id, moment, body)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }
