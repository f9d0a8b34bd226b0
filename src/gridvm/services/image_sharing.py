"""Who may publish an image to whom.

- private: the owner (and admins) only; anyone may keep their own images private.
- group: publishing to a group is a group manager's act. A manager of the image's group
  publishes their own images there; an admin may publish any image. Other owners are
  refused with the names of the group's managers to ask. A manager may also withdraw
  (make private) an image shared with their group; the owner stays the owner.
- public: admins only.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.common.errors import Forbidden, InvalidInput
from gridvm.schemas.images import Visibility
from gridvm.services.principal import Principal
from gridvm.store.models import Group, Image, Membership, User


def is_manager(s: Session, user_id: str, group_id: str | None) -> bool:
    if group_id is None:
        return False
    row = s.get(Membership, (user_id, group_id))
    return row is not None and row.manager


def manager_names(s: Session, group_id: str) -> list[str]:
    return list(
        s.scalars(
            select(User.name)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.group_id == group_id, Membership.manager.is_(True))
            .order_by(User.name)
        ).all()
    )


def check_publish(
    s: Session, who: Principal, owner_id: str, group_id: str | None, visibility: Visibility
) -> None:
    """Refuse (Forbidden, InvalidInput) giving an image of ``owner_id`` in ``group_id``
    the ``visibility`` asked for, unless ``who`` may."""
    if visibility == Visibility.public and not who.is_admin:
        raise Forbidden(
            "only admins publish public images",
            hint="a manager of your group can share it with the group",
        )
    if visibility != Visibility.group:
        return
    if group_id is None:
        raise InvalidInput("the image's owner is in no group", hint="keep the image private")
    if who.is_admin or (owner_id == who.user_id and is_manager(s, who.user_id, group_id)):
        return
    group = s.get_one(Group, group_id)
    managers = manager_names(s, group_id)
    if owner_id != who.user_id:
        hint = f"only {'a manager of ' + group.name if managers else 'an admin'} or its owner"
        raise Forbidden(
            f"you may not publish another user's image to group {group.name}",
            hint=f"{hint} can ask for it",
        )
    ask = (
        f"ask a manager of {group.name}: {', '.join(managers)}"
        if managers
        else f"group {group.name} has no manager yet: ask an admin"
    )
    raise Forbidden(
        f"only a manager of group {group.name} may publish images to it",
        hint=f"{ask} (or keep the image private)",
    )


def may_withdraw(s: Session, who: Principal, image: Image) -> bool:
    """A manager may make an image shared with their group private again."""
    return image.visibility == Visibility.group and is_manager(s, who.user_id, image.group_id)
