#!/usr/bin/env python3
"""Writes a demo mailbox for the web face's screenshots and benchmark.

usage: scripts/demo-data.py OUT_DIR [ORDERS]

Without ORDERS: the item fixtures (tests/fixtures/items, 11 languages) with
their Date headers moved so that the orders land in every section of the
dashboard (needs action, in transit, awaiting shipment, completed), and a
file `events.sql` with carrier events for some parcels, as a tracking
provider would have reported them.

With ORDERS (e.g. 500): that many plain shipping emails, shipped 1 to 100
days ago (so about 60 % are active), for load tests.
"""
import datetime
import email.utils
import pathlib
import re
import sys

root = pathlib.Path(__file__).resolve().parent.parent
out = pathlib.Path(sys.argv[1])
out.mkdir(parents=True, exist_ok=True)
now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def at(days, hours=0):
    return now - datetime.timedelta(days=days, hours=hours)


if len(sys.argv) > 2:
    n = int(sys.argv[2])
    for i in range(n):
        order = f"81{i:014d}"
        number = f"LP00{i:012d}"
        date = email.utils.format_datetime(at(1 + i % 100, i % 24))
        (out / f"ship-{i:05d}.eml").write_text(
            "From: AliExpress <transaction@notice.aliexpress.com>\r\n"
            "To: alice@example.test\r\n"
            f"Subject: Your order {order} has been shipped\r\n"
            f"Date: {date}\r\n"
            f"Message-ID: <bench-{i}@notice.aliexpress.com>\r\n"
            "MIME-Version: 1.0\r\n"
            'Content-Type: text/plain; charset="UTF-8"\r\n\r\n'
            f"Your order {order} has been shipped by the seller.\r\n\r\n"
            "SHIPPING METHOD : AliExpress Standard Shipping.\r\n"
            f"TRACKING NUMBER : {number}\r\n\r\n"
            f"Order details: https://www.aliexpress.com/p/order/detail.html?orderId={order}\r\n"
        )
    sys.exit(0)

# fixture prefix -> days since the email
ages = {
    "i01": 2, "i02": 4, "i03": 9, "i05": 1, "i09": 3, "i11": 5, "i13": 6,
    "i04": 56,  # shipped: protection ends in 4 days
    "i06": 12,  # shipped: in transit
    "i07": 66,  # shipped: protection ended, dispute still possible
    "i08": 20,  # shipped, delivered 2 days ago, not confirmed
    "i10": 30,  # shipped: in transit, one parcel at customs
    "i12": 85,  # shipped long ago: completed by AliExpress
}
for f in sorted((root / "tests/fixtures/items").glob("i*.eml")):
    age = ages.get(f.name[:3])
    if age is None:
        continue
    raw = f.read_bytes()
    date = email.utils.format_datetime(at(age, 1)).encode()
    raw = re.sub(rb"(?m)^Date: .*\r?$", b"Date: " + date, raw, count=1)
    (out / f.name).write_bytes(raw)


def t(days, hours=0):
    return at(days, hours).strftime("%Y-%m-%dT%H:%M:%SZ")


# number: (status, carrier, [(days ago, description, location, status)], delivered days ago)
events = {
    "RS339621180NL": ("in_transit", "PostNL", [(11, "Accepted by the carrier", "Shenzhen", "info_received"), (6, "Departed from the sorting centre", "Shenzhen", "in_transit"), (2, "Arrived at the destination country", "Amsterdam", "in_transit")], None),
    "YT2632100001234567": ("delivered", "Poste Italiane", [(18, "Accepted", "Guangzhou", "info_received"), (9, "In transit", "Milano", "in_transit"), (2, "Delivered to the mailbox", "Roma", "delivered")], 2),
    "LP00527423529911": ("customs", "Correos", [(28, "Accepted", "Yiwu", "info_received"), (4, "Held for customs inspection", "Madrid", "customs")], None),
    "UH214365908CN": ("in_transit", "China Post", [(27, "Posted", "Yiwu", "info_received"), (15, "Departed the origin country", "Shanghai", "in_transit")], None),
    "LP00612345678901": ("in_transit", "Cainiao", [(54, "Accepted", "Dongguan", "info_received"), (30, "Arrived at the transit hub", "Liège", "in_transit")], None),
}
sql = ["BEGIN;"]
for number, (status, carrier, evs, delivered) in events.items():
    d = f"'{t(delivered)}'" if delivered is not None else "NULL"
    sql.append(
        f"UPDATE parcels SET provider_status = '{status}', carrier = '{carrier}', "
        f"last_checked_at = '{t(0, 1)}', delivered_at = {d} WHERE tracking_number = '{number}';"
    )
    for days, desc, loc, st in evs:
        sql.append(
            "INSERT OR IGNORE INTO events (tracking_number, provider, time_utc, description, description_key, location, status) "
            f"VALUES ('{number}', 'cainiao', '{t(days, 3)}', '{desc}', '{desc.lower()}', '{loc}', '{st}');"
        )
sql.append("COMMIT;")
(out / "events.sql").write_text("\n".join(sql) + "\n")
