from tests.support.definitions import sms_definition
from tests.support.tenants import Tenant


async def test_create_and_list(client, tenant: Tenant) -> None:
    created = await client.post(
        f"{tenant.base}/definitions", json=sms_definition(), headers=tenant.headers
    )
    assert created.status_code == 201
    listed = await client.get(f"{tenant.base}/definitions", headers=tenant.headers)
    assert [d["id"] for d in listed.json()] == [created.json()["id"]]
