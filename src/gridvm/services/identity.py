"""Users, groups and API tokens; the first admin of a new site."""

from __future__ import annotations

import hashlib
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from gridvm.common.errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthorized
from gridvm.common.names import new_id, validate_name
from gridvm.schemas.identity import GroupOut, Role, TokenCreated, TokenOut, UserOut, WhoAmI
from gridvm.services.group_tree import group_paths
from gridvm.services.principal import Principal
from gridvm.store.db import Database
from gridvm.store.models import Group, Membership, Token, User, utcnow

TOKEN_PREFIX = "gvm_"  # noqa: S105 - a prefix, not a secret
ADMIN_NAME = "admin"
ADMIN_GROUP = "admins"
AGENT_NAME = "agent"
AGENT_GROUP = "agents"


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def principal_of(user: User, token: Token | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        name=user.name,
        role=Role(user.role),
        group_ids=frozenset(user.group_ids),
        primary_group_id=user.primary_group_id,
        token_id=token.id if token else None,
        bound_host=token.host_name if token else None,
    )


def user_out(user: User) -> UserOut:
    return UserOut(
        name=user.name,
        role=Role(user.role),
        groups=sorted(m.group.name for m in user.memberships),
        created_at=user.created_at,
    )


def token_out(token: Token) -> TokenOut:
    return TokenOut(
        id=token.id,
        user=token.user.name,
        description=token.description,
        created_at=token.created_at,
        last_used_at=token.last_used_at,
    )


class IdentityService:
    def __init__(self, db: Database) -> None:
        self.db = db

    # --- authentication -------------------------------------------------
    def authenticate(self, secret: str | None) -> Principal:
        if not secret:
            raise Unauthorized(
                "no API token given", hint="send 'Authorization: Bearer <token>' (gridvm login)"
            )
        with self.db.session() as s:
            token = s.scalar(select(Token).where(Token.secret_sha256 == _hash(secret)))
            if token is None:
                raise Unauthorized("the API token is not valid", hint="ask for a new token")
            now = utcnow()
            if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
                token.last_used_at = now
            return principal_of(token.user, token)

    def bind_agent_token(self, who: Principal, host_name: str) -> Principal:
        """Bind an agent's token to the host it registers (once); refuse another host."""
        who.require_agent()
        if who.bound_host is None and who.token_id is not None:
            with self.db.session() as s:
                token = s.get_one(Token, who.token_id)
                if token.host_name is None:
                    token.host_name = host_name
                who = principal_of(token.user, token)
        who.require_agent_of(host_name)
        return who

    def whoami(self, who: Principal) -> WhoAmI:
        with self.db.session() as s:
            user = s.get_one(User, who.user_id)
            return WhoAmI(name=user.name, role=Role(user.role), groups=user_out(user).groups)

    # --- groups ---------------------------------------------------------
    def create_group(
        self, who: Principal, name: str, parent: str | None = None, shares: float = 1.0
    ) -> GroupOut:
        who.require_admin()
        validate_name(name, what="group name")
        with self.db.session() as s:
            if s.scalar(select(Group).where(Group.name == name)):
                raise Conflict(f"group {name!r} exists already")
            parent_id = None
            if parent is not None:
                parent_id = self._group(s, parent).id
            group = Group(id=new_id("grp"), name=name, parent_id=parent_id, shares=shares)
            s.add(group)
            s.flush()
            return self._group_out(s, group, [])

    def update_group(self, who: Principal, name: str, shares: float | None) -> GroupOut:
        """Set a group's fair-share shares (admins)."""
        who.require_admin()
        with self.db.session() as s:
            group = self._group(s, name)
            if shares is not None:
                group.shares = shares
            return self._group_out(s, group, self._members(s, group))

    @staticmethod
    def _group(s: Session, name: str) -> Group:
        group = s.scalar(select(Group).where(Group.name == name))
        if group is None:
            raise NotFound(f"no group {name!r}", hint="see the groups with: gridvm group list")
        return group

    @staticmethod
    def _members(s: Session, group: Group) -> list[str]:
        return list(
            s.scalars(
                select(User.name)
                .join(Membership, Membership.user_id == User.id)
                .where(Membership.group_id == group.id)
                .order_by(User.name)
            ).all()
        )

    @staticmethod
    def _group_out(s: Session, group: Group, members: list[str]) -> GroupOut:
        paths = group_paths(s)
        parent = s.get(Group, group.parent_id) if group.parent_id else None
        managers = s.scalars(
            select(User.name)
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.group_id == group.id, Membership.manager.is_(True))
            .order_by(User.name)
        ).all()
        return GroupOut(
            name=group.name,
            created_at=group.created_at,
            members=members,
            parent=parent.name if parent else None,
            path=paths.get(group.id, group.name),
            shares=group.shares,
            managers=list(managers),
        )

    # --- members and managers -------------------------------------------
    def set_member(
        self, who: Principal, group_name: str, user_name: str, manager: bool
    ) -> GroupOut:
        """Add ``user_name`` to the group, or change whether they manage it. Admins do both;
        a manager of the group may add plain members."""
        with self.db.session() as s:
            group = self._group(s, group_name)
            user = self._user(s, user_name)
            membership = s.get(Membership, (user.id, group.id))
            if not who.is_admin:
                changes_manager = manager or (membership is not None and membership.manager)
                if changes_manager or not self._manages(s, who, group):
                    raise Forbidden(
                        f"only admins{'' if changes_manager else ' and managers of ' + group.name}"
                        f" may {'name managers of' if changes_manager else 'add members to'}"
                        f" group {group.name}",
                        hint="ask a site administrator",
                    )
            if membership is None:
                membership = Membership(user_id=user.id, group_id=group.id, group=group)
                user.memberships.append(membership)
            membership.manager = manager
            s.flush()
            return self._group_out(s, group, self._members(s, group))

    def remove_member(self, who: Principal, group_name: str, user_name: str) -> GroupOut:
        """Take ``user_name`` out of the group (not their primary group). Admins, or a
        manager of the group for a member who is not a manager."""
        with self.db.session() as s:
            group = self._group(s, group_name)
            user = self._user(s, user_name)
            membership = s.get(Membership, (user.id, group.id))
            if membership is None:
                raise NotFound(f"{user.name} is not a member of group {group.name}")
            if not who.is_admin and (membership.manager or not self._manages(s, who, group)):
                raise Forbidden(
                    f"you may not remove {user.name} from group {group.name}",
                    hint="admins remove managers; managers remove other members",
                )
            if user.primary_group_id == group.id:
                raise Conflict(
                    f"group {group.name} is {user.name}'s primary group",
                    hint="their VMs and images count there; it cannot be taken away",
                )
            user.memberships.remove(membership)
            s.flush()
            return self._group_out(s, group, self._members(s, group))

    @staticmethod
    def _manages(s: Session, who: Principal, group: Group) -> bool:
        own = s.get(Membership, (who.user_id, group.id))
        return own is not None and own.manager

    @staticmethod
    def _user(s: Session, name: str) -> User:
        user = s.scalar(select(User).where(User.name == name))
        if user is None:
            raise NotFound(f"no user {name!r}", hint="see the users with: gridvm user list")
        return user

    def list_groups(self, who: Principal) -> list[GroupOut]:
        with self.db.session() as s:
            groups = s.scalars(select(Group).order_by(Group.name)).all()
            out = []
            for group in groups:
                if not who.is_admin and group.id not in who.group_ids:
                    continue
                out.append(self._group_out(s, group, self._members(s, group)))
            return out

    # --- users ----------------------------------------------------------
    def create_user(self, who: Principal, name: str, group: str, role: Role) -> UserOut:
        who.require_admin()
        validate_name(name, what="user name")
        with self.db.session() as s:
            return user_out(self._create_user(s, name, group, role))

    def _create_user(self, s: Session, name: str, group_name: str, role: Role) -> User:
        if s.scalar(select(User).where(User.name == name)):
            raise Conflict(f"user {name!r} exists already")
        group = s.scalar(select(Group).where(Group.name == group_name))
        if group is None:
            raise NotFound(
                f"no group named {group_name!r}",
                hint=f"create it: gridvm group create {group_name}",
            )
        user = User(id=new_id("usr"), name=name, role=role.value, primary_group_id=group.id)
        user.memberships.append(Membership(group_id=group.id, group=group))
        s.add(user)
        s.flush()
        return user

    def list_users(self, who: Principal) -> list[UserOut]:
        who.require_admin()
        with self.db.session() as s:
            return [user_out(u) for u in s.scalars(select(User).order_by(User.name)).all()]

    # --- tokens ---------------------------------------------------------
    def create_token(self, who: Principal, user_name: str | None, description: str) -> TokenCreated:
        if len(description) > 200:
            raise InvalidInput("the token description is longer than 200 characters")
        with self.db.session() as s:
            if user_name is None or user_name == who.name:
                user = s.get_one(User, who.user_id)
            else:
                who.require_admin()
                found = s.scalar(select(User).where(User.name == user_name))
                if found is None:
                    raise NotFound(f"no user named {user_name!r}")
                user = found
            secret, token = self._new_token(s, user, description)
            return TokenCreated(token=secret, **token_out(token).model_dump())

    def _new_token(self, s: Session, user: User, description: str) -> tuple[str, Token]:
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        token = Token(
            id=new_id("tok"), user_id=user.id, secret_sha256=_hash(secret), description=description
        )
        token.user = user
        s.add(token)
        s.flush()
        return secret, token

    def list_tokens(self, who: Principal) -> list[TokenOut]:
        with self.db.session() as s:
            query = select(Token).order_by(Token.created_at)
            if not who.is_admin:
                query = query.where(Token.user_id == who.user_id)
            return [token_out(t) for t in s.scalars(query).all()]

    def revoke_token(self, who: Principal, token_id: str) -> None:
        with self.db.session() as s:
            token = s.get(Token, token_id)
            if token is None or (not who.is_admin and token.user_id != who.user_id):
                raise NotFound(f"no token {token_id!r}")
            s.delete(token)

    # --- first start ----------------------------------------------------
    def bootstrap(self, admin_token_file: Path, agent_token_file: Path) -> None:
        """Create the admin (and the local agent's identity) once; write their tokens 0600."""
        with self.db.session() as s:
            if s.scalar(select(User).where(User.name == ADMIN_NAME)) is not None:
                return
            s.add(Group(id=new_id("grp"), name=ADMIN_GROUP))
            s.add(Group(id=new_id("grp"), name=AGENT_GROUP))
            s.flush()
            admin = self._create_user(s, ADMIN_NAME, ADMIN_GROUP, Role.admin)
            agent = self._create_user(s, AGENT_NAME, AGENT_GROUP, Role.agent)
            admin_secret, _ = self._new_token(s, admin, "created at first start")
            agent_secret, _ = self._new_token(s, agent, "local agent, created at first start")
            _write_secret(admin_token_file, admin_secret)
            _write_secret(agent_token_file, agent_secret)


def _write_secret(path: Path, secret: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    fd = tmp.open("x", encoding="utf-8")
    try:
        tmp.chmod(0o600)
        fd.write(secret + "\n")
    finally:
        fd.close()
    tmp.replace(path)
