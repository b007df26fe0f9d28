"""`autoins seed`: demo drivers with an active policy and a login each, an admin, idempotent, salted hashes."""

from __future__ import annotations

from autoins.seed import seed_demo
from storage.postgres.pool import connect
from tests.integration.inprocess_api import drop_seeded, seeded_database


async def test_seeding_creates_drivers_policies_and_logins_once(base_settings):
    settings = await seeded_database(base_settings, drivers=4)
    try:
        again = await seed_demo(settings, 5)  # one more driver: only it is new
        assert (again.new_drivers, again.new_policies, again.new_users) == (1, 1, 1)
        conn = await connect(settings)
        try:
            users = await conn.fetch("SELECT username, role, driver_id, password_hash FROM users ORDER BY username")
            policies = await conn.fetch("SELECT driver_id, status, base_premium, current_premium FROM policies")
        finally:
            await conn.close()
        assert [(u["username"], u["role"], u["driver_id"]) for u in users] == [
            ("admin", "admin", None), *((f"driver000{n}", "driver", f"driver000{n}") for n in range(1, 6))]
        assert len({u["password_hash"] for u in users}) == len(users)  # every hash has its own salt
        assert sorted(p["driver_id"] for p in policies) == [f"driver000{n}" for n in range(1, 6)]
        assert {(p["status"], str(p["base_premium"]), str(p["current_premium"])) for p in policies} == {
            ("active", "600.00", "600.00")}
    finally:
        await drop_seeded(settings)
