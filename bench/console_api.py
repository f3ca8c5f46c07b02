"""The console's heaviest reads at scale: dashboard and customer search, API time on PostgreSQL.

    .venv/bin/python bench/console_api.py [--customers 1000000] [--url postgresql://postgres@127.0.0.1:5432/postgres]
                                          [--keep] [--reuse]

Creates a scratch database beside --url (dropped at the end unless --keep), seeds stores, guides,
customers, their bindings, a year of funnel events, members (every third customer, with a phone and
a purchase history), one order per member and one campaign's recipients with COPY, then times each
call the dashboard and the customer pages make, signed in as an HQ user and as a store manager
through the console's session cookie. Prints median and p95 of --runs calls per endpoint; exits 1
when a median is over --budget-ms (the issue's 300 ms). --reuse measures a kept database again
(migrating it to the current head first), so before/after runs compare the same data.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import asyncpg  # noqa: E402
from aiohttp import CookieJar  # noqa: E402
from aiohttp.test_utils import TestClient, TestServer  # noqa: E402

STORES, GUIDES_PER_STORE, TAGS = 1000, 10, ["VIP", "新客", "高意向", "母婴", "运动"]


async def seed(url: str, customers: int) -> None:
    conn = await asyncpg.connect(url)
    rng = random.Random(11)
    now = dt.datetime.now(dt.UTC)
    try:
        await conn.copy_records_to_table("stores", columns=["code", "name", "city", "address", "status", "created_at", "updated_at"],
                                         records=[(f"S{i:04d}", f"门店{i}", "上海", "", "open", now, now) for i in range(STORES)])
        await conn.copy_records_to_table("guides", columns=["userid", "name", "store_code", "status", "daily_add_limit", "is_backup", "created_at", "updated_at"],
                                         records=[(f"g{s:04d}{g}", f"导购{s}-{g}", f"S{s:04d}", "active", 100, False, now, now)
                                                  for s in range(STORES) for g in range(GUIDES_PER_STORE)])
        await conn.execute("INSERT INTO channels (code, name, tag_names, created_at) VALUES ('poster', '海报', '[]', now()), ('mall', '商场', '[]', now())")
        await conn.execute("""INSERT INTO campaigns (id, name, audience, content, attribution_days, holdout_percent,
            status, store_codes, created_by, reminders, created_at) VALUES
            (1, '双十一', '{}', '{}', 7, 0, 'sent', '[]', 'bench', '[]', now())""")
        await conn.execute("""INSERT INTO outreach_plans (source, title, content, holdout_percent, status, planned_at, sync_runs)
            VALUES ('campaign:1', '双十一', '{}', 0, 'sent', now(), 0)""")
        batch = 100_000
        for start in range(0, customers, batch):
            people, bindings, funnel, members, orders, recipients = [], [], [], [], [], []
            for i in range(start, min(start + batch, customers)):
                store = rng.randrange(STORES)
                guide = f"g{store:04d}{rng.randrange(GUIDES_PER_STORE)}"
                at = now - dt.timedelta(seconds=rng.randrange(365 * 86400))
                channel = "poster" if i % 3 else "mall"
                tags = json.dumps(rng.sample(TAGS, rng.randrange(3)), ensure_ascii=False)
                people.append((f"wm{i:08d}", f"客户{i}", 0, guide, f"S{store:04d}", channel, "bound", tags, at, at, at, at))
                bindings.append((f"wm{i:08d}", guide, f"S{store:04d}", channel, "scan", at))
                for step in ("scan", "locate", "add"):
                    funnel.append((step, "code0001", channel, f"S{store:04d}", guide, "{}", at))
                if i % 3 == 0:  # a member: a phone, purchases, one order kept per member
                    purchases = rng.randrange(12)
                    last = at + (now - at) * rng.random() if purchases else None
                    members.append((i + 1, f"M{i:09d}", f"wm{i:08d}", f"138{i:08d}", f"客户{i}", "normal", "binding", "active",
                                    purchases * 10, purchases, purchases * 9900, last, last, "member", at, at, at))
                    orders.append((f"O{i:09d}", "h", i + 1, f"wm{i:08d}", f"S{store:04d}", guide, "customer", "store",
                                   9900, "[]", "[]", 99, "paid", at, at))
                if i % 10 == 0:  # one campaign reached every tenth customer
                    recipients.append(("campaign:1", i + 1, f"wm{i:08d}", guide, f"S{store:04d}", 0, "sent", at))
            await conn.copy_records_to_table("customers", records=people, columns=[
                "external_userid", "name", "gender", "guide_userid", "store_code", "channel_code", "status", "tags",
                "first_bound_at", "bound_at", "created_at", "updated_at"])
            await conn.copy_records_to_table("customer_bindings", records=bindings, columns=[
                "external_userid", "guide_userid", "store_code", "channel_code", "source", "started_at"])
            await conn.copy_records_to_table("funnel_events", records=funnel, columns=[
                "step", "qrcode_code", "channel_code", "store_code", "guide_userid", "details", "at"])
            await conn.copy_records_to_table("members", records=members, columns=[
                "id", "member_no", "external_userid", "phone", "name", "level", "source", "status", "points_balance",
                "purchase_count", "total_spent_fen", "first_purchase_at", "last_purchase_at", "stage",
                "stage_changed_at", "joined_at", "updated_at"])
            await conn.copy_records_to_table("orders", records=orders, columns=[
                "order_no", "request_hash", "member_id", "external_userid", "store_code", "guide_userid",
                "attribution", "channel", "amount_fen", "items", "coupon_codes", "points_earned", "status",
                "paid_at", "created_at"])
            await conn.copy_records_to_table("outreach_recipients", records=recipients, columns=[
                "source", "customer_id", "external_userid", "guide_userid", "store_code", "chunk", "status", "sent_at"])
            print(f"  seeded {min(start + batch, customers):,} customers", file=sys.stderr)
        await conn.execute("VACUUM ANALYZE")  # what autovacuum does to a live table: index-only scans work
    finally:
        await conn.close()


async def measure(url: str, runs: int) -> dict[str, list[float]]:
    from bot.app import create_app
    from bot.config import Settings
    from bot.console.accounts import create_user
    from bot.services import SERVICES

    settings = Settings(_env_file=None, database_url=url, wecom_corp_id="wwbench", wecom_agent_id=1, wecom_secret="s",
                        wecom_token="t", wecom_encoding_aes_key="a" * 43, wecom_api_base_url="http://127.0.0.1:9/cgi-bin/")
    app = create_app(settings, run_jobs=False, migrate=False)
    hq = TestClient(TestServer(app), cookie_jar=CookieJar(unsafe=True))
    await hq.start_server()
    manager = TestClient(hq.server, cookie_jar=CookieJar(unsafe=True))  # same server, own session
    timings: dict[str, list[float]] = {}
    try:
        await create_user(hq.app[SERVICES].db, "bench", "bench-password", "hq_admin")
        await create_user(hq.app[SERVICES].db, "bench-sm", "bench-password", "store_manager", ["S0007"])
        for client, username in ((hq, "bench"), (manager, "bench-sm")):
            answer = await client.post("/api/v1/session", json={"username": username, "password": "bench-password"})
            assert answer.status == 200, await answer.text()
        today = dt.date.today()
        month = {"since": str(today - dt.timedelta(days=29)), "until": str(today)}
        calls = {
            "dashboard funnel by store (30 d)": (hq, "/api/v1/stats/funnel", {"by": "store", **month}),
            "dashboard funnel by channel (30 d)": (hq, "/api/v1/stats/funnel", {"by": "channel", **month}),
            "dashboard funnel one day (trend point)": (hq, "/api/v1/stats/funnel", {"by": "store", "since": str(today), "until": str(today)}),
            "dashboard PK board (30 d)": (hq, "/api/v1/stats/guides", {"period": "day", **month}),
            "dashboard PK board by week (56 d)": (hq, "/api/v1/stats/guides", {"period": "week"}),
            "dashboard PK board one store (30 d)": (hq, "/api/v1/stats/guides", {"period": "day", "store_code": "S0007", **month}),
            "store manager funnel (30 d)": (manager, "/api/v1/stats/funnel", {"by": "store", **month}),
            "store manager PK board (30 d)": (manager, "/api/v1/stats/guides", {"period": "day", **month}),
            "customers newest page": (hq, "/api/v1/customers", {"limit": 21}),
            "customers of one store": (hq, "/api/v1/customers", {"limit": 21, "store_code": "S0007"}),
            "customers of one guide": (hq, "/api/v1/customers", {"limit": 21, "guide_userid": "g00073"}),
            "customers with a tag": (hq, "/api/v1/customers", {"limit": 21, "tag": "VIP"}),
            "search: name substring (rare)": (hq, "/api/v1/customers", {"limit": 21, "q": "客户42424"}),
            "search: name, 2 characters (common)": (hq, "/api/v1/customers", {"limit": 21, "q": "客户"}),
            "search: name, no match": (hq, "/api/v1/customers", {"limit": 21, "q": "无此人"}),
            "search: name, 2 characters, no match": (hq, "/api/v1/customers", {"limit": 21, "q": "无人"}),
            "search: phone": (hq, "/api/v1/customers", {"limit": 21, "q": "13800424242"}),
            "search: external id exact": (hq, "/api/v1/customers", {"limit": 21, "q": "wm00424242"}),
            "search: external id prefix": (hq, "/api/v1/customers", {"limit": 21, "q": "wm004242"}),
            "search: stage loyal": (hq, "/api/v1/customers", {"limit": 21, "stage": "loyal"}),
            "search: stage new_friend": (hq, "/api/v1/customers", {"limit": 21, "stage": "new_friend"}),
            "search: stage + store": (hq, "/api/v1/customers", {"limit": 21, "stage": "repeat", "store_code": "S0007"}),
            "store manager: customers": (manager, "/api/v1/customers", {"limit": 21}),
            "store manager: search by name": (manager, "/api/v1/customers", {"limit": 21, "q": "客户4"}),
            "store manager: phone of another store": (manager, "/api/v1/customers", {"limit": 21, "q": "13800424242"}),
            "one customer": (hq, "/api/v1/customers/wm00004242", {}),
            "a customer's orders": (hq, "/api/v1/customers/wm00424242/orders", {"limit": 21}),
            "a customer's outreach": (hq, "/api/v1/customers/wm00424240/outreach", {"limit": 21}),
        }
        for name, (client, path, query) in calls.items():
            started = time.perf_counter()
            answer = await client.get(path, params=query)  # warm the plan cache (the PK board: tally settled days)
            print(f"  {name}: first call {(time.perf_counter() - started) * 1000:.0f} ms", file=sys.stderr)
            if answer.status != 200:  # an endpoint this version does not have
                print(f"  {name}: {answer.status}, not measured", file=sys.stderr)
                continue
            for _ in range(runs):
                started = time.perf_counter()
                answer = await client.get(path, params=query)
                await answer.read()
                timings.setdefault(name, []).append((time.perf_counter() - started) * 1000)
                assert answer.status == 200, (name, answer.status)
    finally:
        await manager.close()
        await hq.close()
    return timings


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--budget-ms", type=float, default=300)
    parser.add_argument("--keep", action="store_true", help="keep the seeded database for --reuse")
    parser.add_argument("--reuse", action="store_true", help="measure the kept database again (no seeding)")
    args = parser.parse_args()
    from bot.storage.migrate import upgrade

    base, _, _ = args.url.rpartition("/")
    name = "wa_bench_console"
    admin = await asyncpg.connect(args.url)
    if not args.reuse:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.execute(f'CREATE DATABASE "{name}"')
    try:
        url = f"{base}/{name}"
        started = time.perf_counter()
        await asyncio.to_thread(upgrade, url.replace("postgresql://", "postgresql+asyncpg://"))
        print(f"migrated in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        if not args.reuse:
            started = time.perf_counter()
            await seed(url, args.customers)
            print(f"seeded {args.customers:,} customers in {time.perf_counter() - started:.0f} s", file=sys.stderr)
        else:  # the kept database may hold the users of an earlier run
            conn = await asyncpg.connect(url)
            await conn.execute("DELETE FROM console_sessions; DELETE FROM console_users")
            await conn.execute("VACUUM ANALYZE")
            await conn.close()
        timings = await measure(url.replace("postgresql://", "postgresql+asyncpg://"), args.runs)
    finally:
        if not args.keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    over = False
    print(f"{'call':44} {'median ms':>10} {'p95 ms':>8}")
    for call, values in timings.items():
        median = statistics.median(values)
        p95 = sorted(values)[max(0, round(len(values) * 0.95) - 1)]
        over |= median > args.budget_ms
        print(f"{call:44} {median:10.1f} {p95:8.1f}{'  OVER' if median > args.budget_ms else ''}")
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
