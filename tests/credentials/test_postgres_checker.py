"""Setting and testing a rotated password in a real PostgreSQL, single-user and alternating-users."""

from __future__ import annotations

import threading

import pytest

from tests.credentials.conftest import DATABASE, SandboxPostgres, new_password
from vaultflow.base.errors import InputError
from vaultflow.sandbox.openbao import free_port
from vaultflow.steps.credentials import (
    Credential,
    CredentialError,
    CredentialRefused,
    CredentialUnreachable,
)
from vaultflow.steps.credentials.postgres import (
    PostgresAlternatingUsers,
    PostgresEndpoint,
    PostgresSingleUser,
    connect,
)


def refused(postgres: SandboxPostgres, credential: Credential) -> str:
    """The one-line message of a refused login with ``credential`` (fails the test if it logs in)."""
    with pytest.raises(CredentialRefused) as caught:
        PostgresSingleUser(postgres.endpoint, credential).test(credential)
    return str(caught.value)


def assert_never_shown(
    postgres: SandboxPostgres, *credentials: Credential, also: tuple[object, ...] = ()
) -> None:
    log = postgres.log_text()
    for credential in credentials:
        assert credential.password not in log
        assert credential.password not in repr(credential)
        assert credential.password not in str(credential)
        for thing in also:
            assert credential.password not in repr(thing)
            assert credential.password not in str(thing)


def test_single_user_set_then_only_the_new_password_logs_in(postgres: SandboxPostgres) -> None:
    old = postgres.new_user("single")
    checker = PostgresSingleUser(postgres.endpoint, old)
    new = checker.next_credential(old, new_password())
    assert new.username == old.username
    checker.set(new)
    checker.test(new)
    message = refused(postgres, old)
    assert message == (
        f"postgres 127.0.0.1:{postgres.server.port}/{DATABASE}: login as {old.username!r} refused: "
        f'password authentication failed for user "{old.username}"'
    )
    checker.set(new)  # Argo retries the step: the current password is refused, the new one is in place
    checker.test(new)
    assert "statement: ALTER ROLE CURRENT_USER PASSWORD 'SCRAM-SHA-256$4096:" in postgres.log_text()
    assert_never_shown(postgres, old, new, also=(checker, message))


def test_single_user_restore_puts_the_old_password_back(postgres: SandboxPostgres) -> None:
    old = postgres.new_user("restore")
    checker = PostgresSingleUser(postgres.endpoint, old)
    new = checker.next_credential(old, new_password())
    checker.set(new)
    checker.restore(old, new)
    checker.test(old)
    refused(postgres, new)
    checker.restore(old, new)  # retried: already restored, nothing to do
    checker.test(old)
    assert_never_shown(postgres, old, new)


def test_restore_after_a_change_behind_the_pipelines_back_needs_the_admin(postgres: SandboxPostgres) -> None:
    old = postgres.new_user("behind")
    checker = PostgresSingleUser(postgres.endpoint, old)
    new = checker.next_credential(old, new_password())
    checker.set(new)
    intruder = Credential(old.username, new_password())
    PostgresAlternatingUsers(postgres.endpoint, postgres.admin).set(intruder)  # someone else changes it
    with pytest.raises(CredentialRefused) as caught:
        checker.test(new)
    with pytest.raises(CredentialRefused) as cannot:
        checker.restore(old, new)
    assert str(cannot.value).endswith(
        f"cannot restore the password of {old.username!r}: neither the new nor the old password logs in, "
        "and no admin is configured"
    )
    PostgresSingleUser(postgres.endpoint, old, admin=postgres.admin).restore(old, new)
    checker.test(old)
    assert_never_shown(postgres, old, new, intruder, also=(caught.value, cannot.value))


def test_alternating_users_create_the_clone_with_the_same_grants(postgres: SandboxPostgres) -> None:
    primary = postgres.new_user("alt")
    postgres.server.execute("CREATE TABLE orders (id int)", DATABASE)
    postgres.server.execute("INSERT INTO orders VALUES (7)", DATABASE)
    postgres.server.execute(f'GRANT SELECT ON orders TO "{primary.username}"', DATABASE)
    postgres.server.execute(f'GRANT CREATE ON SCHEMA public TO "{primary.username}"', DATABASE)
    checker = PostgresAlternatingUsers(postgres.endpoint, postgres.admin)
    clone = checker.next_credential(primary, new_password())
    assert clone.username == f"{primary.username}_clone"
    checker.set(clone)
    checker.test(clone)
    with connect(postgres.endpoint, clone) as session:
        assert session.execute("SELECT id FROM orders").fetchall() == [(7,)]
        session.execute("CREATE TABLE made_by_clone (id int)")
        owner = session.execute(
            "SELECT tableowner FROM pg_tables WHERE tablename = %s", ["made_by_clone"]
        ).fetchone()
    assert owner == (primary.username,)  # the clone acts as its primary: the two are interchangeable
    with connect(postgres.endpoint, primary) as session:
        session.execute("DROP TABLE made_by_clone")  # the primary owns it
    checker.set(clone)  # retried: the clone exists, is a member, and gets the same password again
    checker.test(clone)
    assert_never_shown(postgres, primary, clone, also=(checker,))


def test_single_user_on_a_clone_login_changes_the_clones_password_only(postgres: SandboxPostgres) -> None:
    """A ``<user>_clone`` session starts as its primary (``SET role``): CURRENT_USER would be the primary.
    A catalog switched from alternating-users to single-user then rotates the clone, not the primary."""
    primary = postgres.new_user("switch")
    clone = PostgresAlternatingUsers(postgres.endpoint, postgres.admin).next_credential(
        primary, new_password()
    )
    PostgresAlternatingUsers(postgres.endpoint, postgres.admin).set(clone)
    single = PostgresSingleUser(postgres.endpoint, clone, postgres.admin)
    new = single.next_credential(clone, new_password())
    single.set(new)
    single.test(new)
    refused(postgres, clone)
    PostgresSingleUser(postgres.endpoint, primary).test(primary)  # the primary was not touched
    single.restore(clone, new)  # as the clone again (logged in with the new password)
    single.test(clone)
    PostgresSingleUser(postgres.endpoint, primary).test(primary)
    assert_never_shown(postgres, primary, clone, new)


def test_alternating_users_never_refuse_the_previous_credential(postgres: SandboxPostgres) -> None:
    """A consumer still holding the previous credential logs in throughout two rotations."""
    previous = postgres.new_user("poll")
    checker = PostgresAlternatingUsers(postgres.endpoint, postgres.admin)
    refusals: list[str] = []
    logins = 0
    stop = threading.Event()
    watched = [previous]

    switched = threading.Event()  # the consumer has logged in with the clone: the previous is retired

    def poll() -> None:
        nonlocal logins
        while not stop.is_set() or logins < 3:
            holding = watched[-1]
            try:
                checker.test(holding)
                logins += 1
                if holding is not previous:
                    switched.set()
            except CredentialError as error:
                refusals.append(str(error))

    poller = threading.Thread(target=poll)
    poller.start()
    try:
        clone = checker.next_credential(previous, new_password())
        checker.set(clone)
        checker.test(clone)
        checker.restore(previous, clone)  # nothing to undo for alternating users: the previous still works
        checker.test(previous)
        watched.append(clone)  # the clone is now current; the next rotation sets the primary again
        # As ESO delivers the clone before the next rotation: that one starts once the consumer holds it.
        assert switched.wait(timeout=30), "the consumer never logged in with the clone"
        back = checker.next_credential(clone, new_password())
        assert back.username == previous.username
        checker.set(back)
        checker.test(back)
    finally:
        stop.set()
        poller.join(timeout=60)
    assert refusals == []
    assert logins >= 3
    refused(postgres, previous)  # the primary's old password is gone after its own turn came again
    assert_never_shown(postgres, previous, clone, back)


def test_postgres_down_is_one_clear_line(postgres: SandboxPostgres) -> None:
    user = postgres.new_user("down")
    nowhere = PostgresEndpoint("127.0.0.1", free_port(), DATABASE, "verify-full", postgres.server.ca_file)
    checker = PostgresSingleUser(nowhere, user)
    with pytest.raises(CredentialUnreachable) as caught:
        checker.set(checker.next_credential(user, new_password()))
    message = str(caught.value)
    assert message == f"postgres 127.0.0.1:{nowhere.port}/{DATABASE}: cannot connect: Connection refused"
    assert "\n" not in message and user.password not in message
    PostgresSingleUser(postgres.endpoint, user).test(user)  # nothing changed on the real server


def test_logins_are_tls_only_and_verify_the_server(postgres: SandboxPostgres) -> None:
    user = postgres.new_user("tls")
    plain = PostgresEndpoint("127.0.0.1", postgres.server.port, DATABASE, "disable")
    with pytest.raises(CredentialRefused) as caught:
        PostgresSingleUser(plain, user).test(user)
    assert "no pg_hba.conf entry" in str(caught.value) and "no encryption" in str(caught.value)
    untrusted = PostgresEndpoint("127.0.0.1", postgres.server.port, DATABASE, "verify-full", None)
    with pytest.raises(CredentialUnreachable) as unverified:
        PostgresSingleUser(untrusted, user).test(user)
    assert "certificate" in str(unverified.value)
    assert_never_shown(postgres, user, also=(caught.value, unverified.value))


def test_open_checker_reaches_the_server_the_catalog_names(postgres: SandboxPostgres) -> None:
    from vaultflow.gitops.catalog.model import PostgresCredential
    from vaultflow.steps.credentials import open_checker

    user = postgres.new_user("catalog")
    spec = PostgresCredential.model_validate(
        {
            "type": "postgres",
            "strategy": "single-user",
            "host": {"key": "host"},
            "port": postgres.server.port,
            "database": DATABASE,
            "caFile": postgres.server.ca_file.name,
        }
    )
    data = {"host": "127.0.0.1", "username": user.username, "password": user.password}
    checker = open_checker(spec, data, base_dir=postgres.server.ca_file.parent)
    assert isinstance(checker, PostgresSingleUser)
    new = checker.next_credential(user, new_password())
    checker.set(new)
    checker.test(new)
    alternating = spec.model_copy(update={"strategy": "alternating-users"})
    with pytest.raises(InputError, match="alternating-users needs the admin credential"):
        open_checker(alternating, data)
    assert isinstance(open_checker(alternating, data, admin=postgres.admin), PostgresAlternatingUsers)
    assert_never_shown(postgres, user, new, also=(checker,))
