"""Groups, users and tokens from the command line."""

from __future__ import annotations

from tests.cli.conftest import Cli


def test_an_admin_makes_a_user_whose_token_works_until_revoked(cli: Cli) -> None:
    assert cli.ok("group", "create", "physics").stdout.strip() == "created group physics (1 shares)"
    assert (
        "created user alice in group physics"
        in cli.ok("user", "create", "alice", "--group", "physics").stdout
    )

    result = cli.ok("token", "create", "--user", "alice", "--description", "laptop")
    token = result.stdout.strip()
    assert token.startswith("gvm_") and "\n" not in token
    assert "shown only now" in result.stderr
    assert token not in result.stderr

    assert cli.ok("whoami", token=token).stdout.startswith("alice (user; groups: physics)")
    assert "physics" in cli.ok("group", "list").stdout
    assert {u["name"] for u in cli.json("user", "list")} == {"admin", "agent", "alice"}
    listed = cli.json("token", "list")
    alice_tokens = [t for t in listed if t["user"] == "alice"]
    assert [t["description"] for t in alice_tokens] == ["laptop"]
    assert all("token" not in t for t in listed)
    assert "laptop" in cli.ok("token", "list").stdout

    # Users are an admin's business.
    assert "admin" in cli.fails("group", "create", "mine", token=token)

    cli.ok("token", "revoke", alice_tokens[0]["id"])
    assert "the API token is not valid" in cli.fails("whoami", token=token)


def test_json_token_creation_for_scripts(cli: Cli) -> None:
    created = cli.json("token", "create", "--description", "ci")
    assert created["token"].startswith("gvm_")
    assert created["user"] == "admin"


def test_a_user_in_a_missing_group_is_refused_with_a_hint(cli: Cli) -> None:
    line = cli.fails("user", "create", "bob", "--group", "nowhere")
    assert line == "error: no group named 'nowhere' (create it: gridvm group create nowhere)"


def test_an_unknown_role_is_a_usage_error(cli: Cli) -> None:
    result = cli("user", "create", "bob", "--group", "admins", "--role", "king")
    assert result.exit_code == 2


def test_admins_name_group_managers_who_add_members(cli: Cli) -> None:
    cli.ok("group", "create", "physics")
    cli.ok("group", "create", "bio")
    cli.ok("user", "create", "alice", "--group", "physics")
    cli.ok("user", "create", "carol", "--group", "bio")
    alice = cli.ok("token", "create", "--user", "alice").stdout.strip()
    assert "admin" in cli.fails("group", "add-member", "physics", "carol", token=alice)
    added = cli.ok("group", "add-member", "physics", "alice", "--manager").stdout
    assert "alice is a manager of group physics" in added
    assert "carol is a member of group physics" in (
        cli.ok("group", "add-member", "physics", "carol", token=alice).stdout
    )
    assert "only admins may name managers" in cli.fails(
        "group", "set-manager", "physics", "carol", token=alice
    )
    physics = next(g for g in cli.json("group", "list") if g["name"] == "physics")
    assert (physics["members"], physics["managers"]) == (["alice", "carol"], ["alice"])
    assert "MANAGERS" in cli.ok("group", "list").stdout
    cli.ok("group", "remove-member", "physics", "carol", token=alice)
    assert "plain member" in cli.ok("group", "set-manager", "physics", "alice", "--no").stdout
    assert "primary group" in cli.fails("group", "remove-member", "physics", "alice")
