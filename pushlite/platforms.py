"""The platforms a device can be on, in one place: which provider delivers to
each, what its tokens look like, what messages call it, and its code in the
packed device record (``storage/records.py``; ``lua/records.lua`` reads the
same codes).

A publish's payload for a platform is the one named like it: VoIP devices get
only an explicit ``apns_voip`` payload (iOS punishes VoIP pushes that ring no
call), Matrix pushers the ``matrix`` notification (given, or derived from the
title and body by ``pushlite.payloads``), browsers the ``web`` payload.

The families name platforms in their own words (Discord's ``gcm``, MPush's
``android``, Twilio's ``FCM``) and map those words onto these. No Flask here:
the storage layer and the workers import it too.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# The token shapes the providers issue. The APIs refuse a token of another
# shape, each family in its own words; the OpenAPI document states them as
# patterns.
APNS_TOKEN = re.compile(r"(?:[0-9a-fA-F]{2}){32,100}")
FCM_TOKEN = re.compile(r"[A-Za-z0-9_\-:.]{20,4096}")


@dataclass(frozen=True)
class Platform:
    name: str
    provider: str
    """The sender that delivers to it, and the name of its credential."""
    code: str
    """Its one-character code in the packed device record."""
    label: str
    """What error messages call it ("Invalid APNs VoIP token.")."""
    token: re.Pattern[str] | None = None
    """The shape of its tokens; None where a token is checked otherwise (a
    browser's subscription by ``pushlite.subscriptions``, a Matrix pushkey
    by the Matrix family)."""
    token_name: str = ""
    """What the provider calls its tokens, for messages that describe one."""

    def accepts(self, token: str) -> bool:
        """Whether ``token`` has the shape the provider issues."""
        return self.token is not None and self.token.fullmatch(token) is not None


FCM = Platform("fcm", "fcm", "f", "FCM", FCM_TOKEN, "FCM registration token")
APNS = Platform("apns", "apns", "a", "APNs", APNS_TOKEN, "APNs device token (64-200 hex digits)")
APNS_VOIP = Platform("apns_voip", "apns", "v", "APNs VoIP", APNS_TOKEN, "APNs VoIP device token (64-200 hex digits)")
MATRIX = Platform("matrix", "matrix", "m", "Matrix")
# A browser's Web Push subscription: its token is the Beams Web SDK's base64
# of the PushSubscription JSON (see ``pushlite.subscriptions``).
WEB = Platform("web", "web", "w", "Web Push")

PLATFORMS: dict[str, Platform] = {platform.name: platform for platform in (FCM, APNS, APNS_VOIP, MATRIX, WEB)}

PROVIDER_OF: dict[str, str] = {name: platform.provider for name, platform in PLATFORMS.items()}
PROVIDERS: tuple[str, ...] = tuple(dict.fromkeys(PROVIDER_OF.values()))
# The providers whose credentials an operator stores (the admin API, the CLI);
# the web credential is the instance's VAPID key pair, made by pushlite itself.
CREDENTIAL_PROVIDERS: tuple[str, ...] = (APNS.provider, FCM.provider)

CODES: dict[str, str] = {name: platform.code for name, platform in PLATFORMS.items()}
NAMES_BY_CODE: dict[str, str] = {platform.code: name for name, platform in PLATFORMS.items()}
