"""Sign-in passwords: argon2id for new hashes, the project's scrypt hashes still verify until upgraded."""

from __future__ import annotations

from tasks.signin.passwords import hash_password, needs_upgrade, scrypt_hash, verify


def test_an_argon2_hash_verifies_only_its_password() -> None:
    stored = hash_password("药品三进")
    assert stored.startswith("$argon2id$")
    assert verify("药品三进", stored) and not verify("药品三退", stored)
    assert not needs_upgrade(stored)


def test_a_scrypt_hash_verifies_and_asks_for_an_upgrade() -> None:
    stored = scrypt_hash("药品三进")
    assert verify("药品三进", stored) and not verify("wrong", stored)
    assert needs_upgrade(stored)


def test_no_hash_or_a_garbled_one_never_verifies() -> None:
    assert not verify("x", None)
    assert not verify("x", "")
    assert not verify("x", "$argon2id$garbage")
    assert not verify("x", "md5$abc")
