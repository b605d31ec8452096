"""`sanjin serve` prints where Prefect's UI is (issue #19: "serve prints the UI address").

The address is what the README's step-by-step tells an engineer to open: the UI beside PREFECT_API_URL (also on a
port other than 4200), PREFECT_UI_URL when the UI is reached elsewhere, and a sentence — not an address that
shows nothing — for the temporary server, which has no UI.
"""

from __future__ import annotations

from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

from sanjin.cli_web import prefect_ui_address


def test_the_ui_is_beside_the_api_on_its_own_port() -> None:
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:4310/api"}):
        assert prefect_ui_address() == "http://127.0.0.1:4310"


def test_a_ui_reached_at_another_address_is_the_one_printed() -> None:
    with temporary_settings(updates={PREFECT_API_URL: "http://10.0.0.5:4310/api",
                                     PREFECT_UI_URL: "https://prefect.ybj.example.gov.cn"}):
        assert prefect_ui_address() == "https://prefect.ybj.example.gov.cn"


def test_without_a_prefect_server_it_says_there_is_no_ui_and_where_to_read_why() -> None:
    with temporary_settings(updates={PREFECT_API_URL: None, PREFECT_UI_URL: None}):
        shown = prefect_ui_address()
    assert shown.startswith("无") and "PREFECT_API_URL" in shown and "http" not in shown
