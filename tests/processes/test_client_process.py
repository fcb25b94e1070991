"""The blocking client against a real `relayflow serve` process (its worker runs the flows)."""

from __future__ import annotations

from pathlib import Path

import pytest

from relayflow.client import NotFoundError, RelayflowClient, ValidationError
from tests.support.definitions import sms_definition
from tests.support.processes import Processes, wait_for

pytestmark = pytest.mark.slow


def test_sync_client_drives_a_served_process(tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'relayflow.db'}"
    with Processes(tmp_path) as processes:
        server = processes.serve(db_url, "serve")
        server.wait_healthy()
        [demo] = server.printed_json()
        with RelayflowClient(server.base_url, demo["apiKey"], demo["accountId"]) as client:
            definition = client.definitions.create(sms_definition(text="Hi {{data.payload.body}}"))
            routed = client.sandbox.inbound_sms("+6591234567", "+6580000000", "there")
            [workflow] = routed.started

            def complete() -> bool:
                found = client.instances.get(definition.id, workflow, include_logs=True)
                return found.status == "Complete"

            wait_for(complete, "the served worker to complete the instance")
            [sent] = client.sandbox.outbox(workflow_id=workflow)
            assert sent.request["text"] == "Hi there"
            assert client.messages.get(sent.umid).workflowId == workflow
            assert [i.workflowId for i in client.instances.iterate(definition.id)] == [workflow]
            assert client.usage.current().executedWorkflowCount == 1
            with pytest.raises(NotFoundError):
                client.instances.get(definition.id, "0123456789abcdef01234567")
            with pytest.raises(ValidationError) as invalid:
                client.definitions.create({"trigger": "inbound_sms"})
            assert invalid.value.errors
