"""fair_lib.lua's account_of names every account as jobcore/fair.py's
account_name does: decimal digits from -2^53 to 2^53 - 1, the 8 bytes' hex past
them (a Lua number is not exact there). Ids at each msgpack width's edges."""

from __future__ import annotations

import redis

from jobcore import Job
from jobcore.fair import account_name
from jobcore.model import encode_job
from jobcore.redis.scripts import source

EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**31 - 1, 2**31, 2**32 - 1, 2**32, 2**53 - 1, 2**53, 2**53 + 1,
         2**60, 2**63 - 1, -1, -32, -33, -128, -129, -32768, -32769, -(2**31), -(2**31) - 1, -(2**53),
         -(2**53) - 1, -(2**60), -(2**63)]  # fmt: skip


def test_account_of_names_every_account_as_python_does(redis_url: str) -> None:
    r = redis.Redis.from_url(redis_url)
    body = source("fair_lib") + "\nlocal out = {}\nfor i = 1, #ARGV do out[i] = account_of(ARGV[i]) end\nreturn out"
    payloads = [encode_job(Job(type="t", args={"n": 1}, account_id=a)) for a in EDGES]
    got = [x.decode() for x in r.eval(body, 0, *payloads)]
    assert got == [account_name(a) for a in EDGES]
    r.close()
