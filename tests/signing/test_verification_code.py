"""Verification codes: stable per issuing authority and number, different for any other, unforgeable without the
secret, forgiving of how a person types them."""

from __future__ import annotations

import stat

from hub.signing.verification import code_matches, load_secret, normalized, verification_code, verification_url


def test_a_code_is_stable_and_names_one_document(tmp_path):
    secret = load_secret(tmp_path / "verification.key")
    assert load_secret(tmp_path / "verification.key") == secret  # made once, kept
    assert stat.S_IMODE((tmp_path / "verification.key").stat().st_mode) == 0o600
    code = verification_code(secret, issuing_country="FR", number="FR-2026-PC-1")
    assert len(code) == 14 and code.count("-") == 2
    assert code == verification_code(secret, issuing_country="fr", number="FR-2026-PC-1")
    others = {verification_code(secret, issuing_country="FR", number=f"FR-2026-PC-{n}") for n in range(2, 2002)}
    assert code not in others and len(others) == 2000
    assert verification_code(secret, issuing_country="NL", number="FR-2026-PC-1") != code
    assert verification_code(load_secret(tmp_path / "other.key"), issuing_country="FR", number="FR-2026-PC-1") != code


def test_a_code_is_checked_as_a_person_types_it(tmp_path):
    secret = load_secret(tmp_path / "verification.key")
    code = verification_code(secret, issuing_country="FR", number="FR-1")
    typed = code.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert normalized(typed) == code and code_matches(secret, typed, issuing_country="FR", number="FR-1")
    assert not code_matches(secret, code, issuing_country="FR", number="FR-2")
    assert not code_matches(secret, "", issuing_country="FR", number="FR-1")
    assert verification_url("https://hub.example/", number="FR 1", code=code) == f"https://hub.example/verify?number=FR+1&code={code}"


def test_processes_making_the_secret_at_once_agree_on_one(tmp_path):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        made = set(pool.map(lambda _: load_secret(tmp_path / "verification.key"), range(16)))
    assert len(made) == 1 and [p.name for p in tmp_path.iterdir()] == ["verification.key"]
