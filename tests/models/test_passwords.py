"""The password policy (ASVS V2.1): long enough, not a common password, not the user's name; phrases welcome."""

from __future__ import annotations

import pytest

from models.passwords import common_passwords, password_problems


def test_a_long_chinese_pass_phrase_is_accepted() -> None:
    assert password_problems("沈阳集采三进工作我负责审核", user_name="reviewer0") == []


@pytest.mark.parametrize("password", ["x", "short-pass1", "药品三进"])
def test_a_password_below_twelve_characters_is_refused_and_the_count_is_named(password: str) -> None:
    problems = password_problems(password, user_name="manager")
    assert any("至少 12 个字符" in p and f"{len(password)} given" in p for p in problems), problems


@pytest.mark.parametrize("password", ["password1234", "QWERTY123456", "1qaz2wsx3edc", "Admin@123456", "aaaaaaaaaaaaaa"])
def test_a_common_or_repetitive_password_is_refused_whatever_its_case(password: str) -> None:
    assert any("过于常见" in p for p in password_problems(password, user_name="manager"))


def test_a_password_containing_the_user_name_is_refused() -> None:
    assert any("用户名" in p for p in password_problems("zhangsan-2025-三进工作", user_name="ZhangSan"))


def test_the_minimum_can_be_raised_by_the_installation() -> None:
    assert password_problems("沈阳集采三进工作我负责审核", user_name="x", min_length=20)


def test_the_bundled_list_is_read_offline_and_skips_its_comments() -> None:
    words = common_passwords()
    assert "123456" in words and "password" in words and not any(w.startswith("#") for w in words)
