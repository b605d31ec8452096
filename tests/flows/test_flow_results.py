"""Every flow names its result storage and persists nothing (flows/results.py says why)."""

import importlib
import pkgutil

import pytest
from prefect import Flow

import flows
from flows.results import RESULT_STORAGE


def product_flows() -> list[Flow]:  # type: ignore[type-arg]
    found = {}
    for info in pkgutil.iter_modules(flows.__path__):
        module = importlib.import_module(f"flows.{info.name}")
        for value in vars(module).values():
            if isinstance(value, Flow) and value.__module__.startswith("flows."):
                found[value.name] = value
    return list(found.values())


def test_the_product_has_its_phase_flows():
    assert {"institution-enrollment", "reminders", "publication", "sanjin-program"} <= {f.name for f in product_flows()}


@pytest.mark.parametrize("flow", product_flows(), ids=lambda f: f.name)
def test_a_flow_names_a_result_storage_and_keeps_no_results(flow):
    # Without a named storage Prefect asks the API for the server's default one twice per flow run.
    assert flow.result_storage == RESULT_STORAGE
    assert flow.persist_result is False
