"""Development-only routes (mounted only with APP_ENV=development and AUTH_DEV_MODE=true)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, status
from pydantic import BaseModel

from services.backend.api.deps import SettingsDep
from services.platform.auth import mint_dev_token
from services.platform.problems import problem_responses

router = APIRouter(prefix="/api/dev", tags=["dev"])


class DevToken(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 (OAuth token type)
    user_id: str


@router.post("/token", response_model=DevToken,
             responses=problem_responses(said={503: "The backend has no JWT_SECRET to sign with"}))
def dev_token(settings: SettingsDep,
              user: Annotated[str, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._@-]+$")] = "dev-user"
              ) -> DevToken:
    """A dev token for `user`, signed with the local JWT secret (for curl, tests and the frontend)."""
    if not settings.jwt_secret:  # read through the secret store, after the settings were checked
        raise HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE, "dev tokens need JWT_SECRET",
                            headers={"Retry-After": "5"})
    token = mint_dev_token(settings.jwt_secret, user, issuer=settings.jwt_issuer, audience=settings.jwt_audience)
    return DevToken(access_token=token, user_id=user)
