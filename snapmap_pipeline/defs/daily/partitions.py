"""Daily partitions × feeds. A feed is one tenant's entity (`acme.employee`), a dynamic partition added
when that tenant's first file of that entity is delivered: tenants come and go without a code change,
which a static tenant list could not do.
"""

from __future__ import annotations

import re

import dagster as dg

FEEDS = "feeds"
DAILY_START = "2024-01-01"

daily = dg.DailyPartitionsDefinition(start_date=DAILY_START, end_offset=0)
feeds_partitions = dg.DynamicPartitionsDefinition(name=FEEDS)
daily_feed_partitions = dg.MultiPartitionsDefinition({"date": daily, "feed": feeds_partitions})

_UNSAFE = re.compile(r"[^a-z0-9_-]+")


def feed_key(tenant: str, entity: str) -> str:
    """`<tenant>.<entity>`, UI-safe; the tenant part never holds a dot, so the split is unambiguous."""
    return f"{_UNSAFE.sub('-', tenant.lower()).strip('-') or 'default'}.{entity}"


def split_feed(feed: str) -> tuple[str, str]:
    tenant, _, entity = feed.rpartition(".")
    return tenant, entity
