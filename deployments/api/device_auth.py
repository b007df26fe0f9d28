"""Who may post readings (docs/SECURITY.md §6): a device with its key (`X-Device-Key`), an admin's token, or — where
`settings.driver_token_ingest` allows it (development by default) — a driver's token. Each may post readings of
one driver (the device's, the driver's own) or, for an admin, of any.

`ingest_caller` is the dependency of the ingest route; the decision over a batch is
`domain.ingest_caller.IngestCaller.refusal`, pure.
A device key and a bearer token together are refused: which one speaks would be a guess.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from deployments.api.auth import current_principal
from domain.ingest_caller import IngestCaller
from usecases.devices import DeviceKeyRefused

DEVICE_KEY_HEADER = "X-Device-Key"
_device_key = APIKeyHeader(name=DEVICE_KEY_HEADER, auto_error=False, scheme_name="DeviceKey",
                           description="The device key POST /api/v1/admin/devices issued (adk1.<device>.<secret>)")
_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <token>` from POST /api/v1/auth/login")


async def ingest_caller(
    request: Request,
    device_key: Annotated[str | None, Depends(_device_key)],
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> IngestCaller:
    """401 for a missing, malformed, unknown, wrong or revoked credential; 403 for a driver's token where driver
    ingest is off; 400 for both credentials at once."""
    if device_key is not None:
        if request.headers.get("authorization"):
            raise HTTPException(status.HTTP_400_BAD_REQUEST,
                                detail=f"send either {DEVICE_KEY_HEADER} or Authorization, not both")
        try:
            device = await request.app.state.resources.devices.authenticate(device_key)
        except DeviceKeyRefused as refused:
            raise HTTPException(status.HTTP_401_UNAUTHORIZED, detail=str(refused)) from None
        return IngestCaller("device", device.driver_id, device.device_id)
    if credentials is None and not request.headers.get("authorization"):
        raise HTTPException(status.HTTP_401_UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"},
                            detail=f"missing credentials: a device posts with {DEVICE_KEY_HEADER}, a login with "
                                   "Authorization: Bearer <token>")
    principal = await current_principal(request, credentials)
    if principal.is_admin:
        return IngestCaller("admin", None)
    if not request.app.state.settings.driver_token_ingest:
        raise HTTPException(status.HTTP_403_FORBIDDEN,
                            detail=f"readings are posted by devices here ({DEVICE_KEY_HEADER}); driver tokens may not "
                                   "post them (setting ingest_driver_tokens)")
    return IngestCaller("driver", principal.driver_id)


IngestCallerDep = Annotated[IngestCaller, Depends(ingest_caller)]
