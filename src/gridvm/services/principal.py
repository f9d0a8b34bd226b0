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

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def require_admin(self) -> None:
        if not self.is_admin:
            raise Forbidden("this needs the admin role", hint="ask a site administrator")

    def require_agent(self) -> None:
        if self.role is not Role.agent:
            raise Forbidden("this endpoint is for host agents", hint="use an agent token")

    def can_see_image(self, image: Image) -> bool:
        if self.is_admin or image.owner_id == self.user_id:
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
