"""Role checks for the use cases."""

from __future__ import annotations

from domain.errors import Forbidden, Unauthenticated
from domain.transitions import Role
from resolvers.context import Context


def require(ctx: Context, role: Role, action: str) -> None:
    """Raise unless the caller's role includes `role`."""
    identity = ctx.identity
    if identity.allows(role):
        return
    needed = role.name.lower()
    if not identity.authenticated:
        raise Unauthenticated(
            f"{action} needs an API key with role {needed} "
            "(send `Authorization: Bearer <key>` or `X-API-Key: <key>`)"
        )
    held = identity.role.name.lower() if identity.role else "none"
    raise Forbidden(f"{action} needs role {needed}; the key {identity.name!r} has role {held}")
