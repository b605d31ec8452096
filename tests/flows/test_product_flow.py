"""A flow run's parameters are recorded as Prefect's encoder would, without importing FastAPI (flows/product_flow.py)."""

import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from flows.enrollment import enrollment_flow
from flows.product_flow import ProductFlow
from tests.flows.test_flow_results import product_flows

ROOT = Path(__file__).resolve().parents[2]


def test_a_process_records_a_flow_runs_parameters_without_importing_fastapi():
    # A fresh process, as a worker's flow process: importing the flow and recording its parameters (what the engine
    # does at the creation of every run) must not import FastAPI, 0.1 s of CPU before the flow's first line.
    code = ("import sys\n"
            "from flows.enrollment import enrollment_flow\n"
            "recorded = enrollment_flow.serialize_parameters({'program': 'shenyang-2025', 'wait': True,"
            " 'rearm_seconds': 60})\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'fastapi'))\n"
            "print(recorded)\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    imported, recorded = out.stdout.splitlines()
    assert imported == "[]"
    assert recorded == "{'program': 'shenyang-2025', 'wait': True, 'rearm_seconds': 60}"


@pytest.mark.parametrize("parameters", [
    {"program": "shenyang-2025", "artifact": False, "wait": True, "rearm_seconds": 604800, "poll_seconds": 2},
    {"program": "沈阳-2025", "send_notices": True, "reminders": False},
    {"program": "x", "ratio": 0.5, "note": None},
])
def test_json_ready_parameters_are_recorded_as_prefects_encoder_records_them(parameters):
    from fastapi.encoders import jsonable_encoder

    recorded = enrollment_flow.serialize_parameters(parameters)
    assert recorded == jsonable_encoder(parameters)
    assert [type(v) for v in recorded.values()] == [type(v) for v in jsonable_encoder(parameters).values()]


def test_a_parameter_of_another_type_still_goes_through_prefects_encoder():
    assert enrollment_flow.serialize_parameters({"program": "x", "day": date(2025, 9, 19)}) == {
        "program": "x", "day": "2025-09-19"}


@pytest.mark.parametrize("flow", product_flows(), ids=lambda f: f.name)
def test_every_product_flow_is_declared_through_product_flow(flow):
    assert isinstance(flow, ProductFlow)


def test_a_flow_copied_with_other_options_is_still_a_product_flow():
    # Prefect's with_options builds a plain Flow: the copy (another name, retries) lost the recording above.
    copied = enrollment_flow.with_options(name="institution-enrollment-copy", retries=1)
    assert isinstance(copied, ProductFlow)
    assert (copied.name, copied.retries, copied.fn) == ("institution-enrollment-copy", 1, enrollment_flow.fn)
    assert copied.serialize_parameters({"program": "x", "wait": True}) == {"program": "x", "wait": True}
