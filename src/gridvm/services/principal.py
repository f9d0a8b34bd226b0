"""Who is asking, and what they may see."""

from __future__ import annotations

from dataclasses import dataclass

from gridvm.common.errors import Forbidden
from gridvm.schemas.identity import Role
from gridvm.schemas.images import Visibility
from gridvm.store.models import Image, Vm


@dataclass(frozen=True)
class Principal:
    user_id: str
    name: str
    role: Role
    group_ids: frozenset[str]
    primary_group_id: str | None
    token_id: str | None = None
    # For an agent token: the host it is bound to (None until its first registration).
    bound_host: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    @property
    def is_officer(self) -> bool:
        """A security officer, or an admin (who holds an officer's powers too)."""
        return self.role in (Role.admin, Role.officer)

    def require_officer(self) -> None:
        if not self.is_officer:
            raise Forbidden(
                "this needs a security officer (or an admin)",
                hint="ask a security officer of the site",
            )

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this needs the admin role", hint="ask a site administrator")

    def require_agent(self) -> None:
        if self.role is not Role.agent:
            raise Forbidden("this endpoint is for host agents", hint="use an agent token")

    def require_agent_of(self, host_name: str) -> None:
        """Only the agent bound to ``host_name`` may speak for it."""
        self.require_agent()
        if self.bound_host != host_name:
            raise Forbidden(
                f"this agent token is not for host {host_name!r}",
                hint="each host's agent needs its own token (gridvm token create --user agent)",
            )

    def require_user(self) -> None:
        """Agent tokens are for the agent protocol only, never for the user API."""
        if self.role is Role.agent:
            raise Forbidden(
                "agent tokens only work on /api/v1/agent", hint="use a user or admin token"
            )

    def can_see_image(self, image: Image) -> bool:
        # Security officers inspect and certify any image.
        if self.is_officer or image.owner_id == self.user_id:
            return True
        if image.visibility == Visibility.public:
            return True
        return image.visibility == Visibility.group and image.group_id in self.group_ids

    def can_change_image(self, image: Image) -> bool:
        return self.is_admin or image.owner_id == self.user_id

    def can_see_vm(self, vm: Vm) -> bool:
        return self.is_admin or vm.owner_id == self.user_id

    def can_change_vm(self, vm: Vm) -> bool:
        return self.is_admin or vm.owner_id == self.user_id
