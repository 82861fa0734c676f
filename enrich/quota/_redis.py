"""The Redis store: one server shared by the runs of several hosts.

Each grant is one Lua script (``EVALSHA``; redis-py loads it again after a
restart of the server), so the budget is updated atomically on the server, by the
server's clock (``TIME``): the hosts' clocks never meet. The script is
:func:`enrich.quota._core.step` line for line; numbers are stored with
``%.17g`` so that both give the same slots (a test runs them side by side).

Keys of one budget share a hash tag, ``cams-enrich:quota:{<budget>}:…``:
``tat`` (the next free slot, the pace and the clock it was set at), ``hb`` (member →
heartbeat, a sorted set), ``m`` (member → ``rate next last backlog``), ``info``
(member → JSON: pid, host, input, joined) and ``g:<member>`` (second → slots
granted, for the 10 s rate). Every key expires an hour after its budget's last
use; ``cams-enrich:quota:budgets`` lists the budgets by last heartbeat, for ``status``.

redis-py's own retries are off: :class:`~enrich.quota.Member` decides how long
to wait for a lost server, and a grant is never retried blindly.
"""

from __future__ import annotations

import contextlib
import json
import time
from typing import Any
from urllib.parse import quote, unquote

from redis.asyncio import Redis
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.retry import Retry

from enrich.quota._core import LEAD_S, QuotaParams, window_rate
from enrich.quota._spec import RedisSpec, scrub
from enrich.quota._types import BudgetStatus, MemberInfo, MemberStatus, StoreUnavailable
from enrich.quota._util import budget_status, one_line

__all__ = ["ACQUIRE_LUA", "PREFIX", "RedisBackend"]

PREFIX = "cams-enrich:quota:"
BUDGETS_KEY = PREFIX + "budgets"
EXPIRE_MS = 3_600_000

# Shared by the scripts: the clock, number formatting, dropping expired members.
_LUA_COMMON = """
local function f(x) return string.format('%.17g', x) end
local function clock(override)
  if override ~= '' then return tonumber(override) end
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function drop_expired(hb, m, info, gprefix, me, now, ttl)
  local gone = redis.call('ZRANGEBYSCORE', hb, '-inf', '(' .. f(now - ttl))
  local ahead = redis.call('ZRANGEBYSCORE', hb, '(' .. f(now + ttl), '+inf')
  for _, list in ipairs({gone, ahead}) do
    for _, who in ipairs(list) do
      if who ~= me then
        redis.call('ZREM', hb, who)
        redis.call('HDEL', m, who)
        redis.call('HDEL', info, who)
        redis.call('DEL', gprefix .. who)
      end
    end
  end
end
"""

#: KEYS: tat hb m info budgets. ARGV: id rate want info_json budget headroom ttl
#: idle_grace backlog_s horizon now_override gprefix expire_ms.
#: Returns {now, pace, busy, slot...} as strings.
ACQUIRE_LUA = _LUA_COMMON + f"local LEAD_S = {LEAD_S!r}\n" + """
local id, rate, want = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local headroom, ttl, grace = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local backlog_s, horizon, gprefix = tonumber(ARGV[9]), tonumber(ARGV[10]), ARGV[12]
local expire_ms = tonumber(ARGV[13])
local now = clock(ARGV[11])
drop_expired(KEYS[2], KEYS[3], KEYS[4], gprefix, id, now, ttl)

local tat, lastpace, stamp = 0, 0, 0
local stored = redis.call('GET', KEYS[1])
if stored then
  local t, p, s = string.match(stored, '^(%S+) (%S+) (%S+)$')
  tat, lastpace, stamp = tonumber(t), tonumber(p), tonumber(s)
end
local mine = nil
local others = {}
local fields = redis.call('HGETALL', KEYS[3])
for i = 1, #fields, 2 do
  local r, nx, last, bl = string.match(fields[i + 1], '^(%S+) (%S+) (%S+) (%S+)$')
  local st = {rate = tonumber(r), next = tonumber(nx), backlog = (bl == '1')}
  if last ~= '-' then st.last = tonumber(last) end
  if fields[i] == id then mine = st else others[#others + 1] = st end
end
if mine == nil then mine = {rate = rate, next = 0, backlog = true} end
mine.rate = rate
mine.backlog = (mine.last == nil) or (now <= mine.last + backlog_s)
local minrate = rate
local busy = 1
for _, st in ipairs(others) do
  if st.rate < minrate then minrate = st.rate end
  if st.backlog and now <= st.next + grace then busy = busy + 1 end
end
local pace = headroom * minrate
local gap = 1.0 / pace
local spacing = busy * gap
if stamp > now then tat = tat - (stamp - now) end
if mine.last ~= nil then mine.next = mine.last + spacing end
local widest = gap
if lastpace > 0 then widest = math.max(gap, 1.0 / lastpace) end
local limit = math.max(2.0, (#others + 2) ^ 2 * widest) + horizon
if mine.next > now + limit then mine.next = now end
if 0 < lastpace and pace < lastpace then
  local allowed = math.max(1, math.floor(pace))
  tat = tat + math.max(0.0, 1.0 - allowed / lastpace)
end

local slots = {}
while #slots < math.max(1, want) do
  local slot = math.max(now + LEAD_S, tat, mine.next)
  if #slots > 0 and (mine.next > tat or slot > slots[1] + horizon) then break end
  slots[#slots + 1] = slot
  tat = slot + gap
  mine.next = slot + spacing
  mine.last = slot
end

redis.call('SET', KEYS[1], f(tat) .. ' ' .. f(pace) .. ' ' .. f(now), 'PX', expire_ms)
local bl = 0
if mine.backlog then bl = 1 end
redis.call('HSET', KEYS[3], id,
           f(mine.rate) .. ' ' .. f(mine.next) .. ' ' .. f(mine.last) .. ' ' .. bl)
redis.call('ZADD', KEYS[2], f(now), id)
redis.call('HSETNX', KEYS[4], id, ARGV[4])
redis.call('ZADD', KEYS[5], f(now), ARGV[5])
for i = 2, 4 do redis.call('PEXPIRE', KEYS[i], expire_ms) end

local gkey = gprefix .. id
local counts = {}
for _, s in ipairs(slots) do
  local sec = string.format('%d', math.floor(s))
  counts[sec] = (counts[sec] or 0) + 1
end
for sec, n in pairs(counts) do
  if redis.call('HINCRBY', gkey, sec, n) == n then
    for _, old in ipairs(redis.call('HKEYS', gkey)) do
      if tonumber(old) < tonumber(sec) - 11 then redis.call('HDEL', gkey, old) end
    end
  end
end
redis.call('PEXPIRE', gkey, expire_ms)

local out = {f(now), f(pace), tostring(busy)}
for _, s in ipairs(slots) do out[#out + 1] = f(s) end
return out
"""

#: KEYS: hb m info budgets. ARGV: id rate info_json budget ttl gprefix expire_ms now_override.
#: Returns now.
HEARTBEAT_LUA = _LUA_COMMON + """
local id, rate, gprefix = ARGV[1], tonumber(ARGV[2]), ARGV[6]
local expire_ms = tonumber(ARGV[7])
local now = clock(ARGV[8])
drop_expired(KEYS[1], KEYS[2], KEYS[3], gprefix, id, now, tonumber(ARGV[5]))
redis.call('ZADD', KEYS[1], f(now), id)
local cur = redis.call('HGET', KEYS[2], id)
if cur then
  redis.call('HSET', KEYS[2], id, f(rate) .. string.match(cur, '^%S+( .*)$'))
else
  redis.call('HSET', KEYS[2], id, f(rate) .. ' 0 - 1')
end
local info = cjson.decode(ARGV[3])
if info['joined'] == 0 then
  local old = redis.call('HGET', KEYS[3], id)
  if old then info['joined'] = cjson.decode(old)['joined'] else info['joined'] = now end
end
redis.call('HSET', KEYS[3], id, cjson.encode(info))
redis.call('ZADD', KEYS[4], f(now), ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', '(' .. f(now - expire_ms / 1000))
for i = 1, 3 do redis.call('PEXPIRE', KEYS[i], expire_ms) end
return f(now)
"""

#: KEYS: hb m info. ARGV: id gprefix.
LEAVE_LUA = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('DEL', ARGV[2] .. ARGV[1])
return 1
"""


class _Keys:
    """The key names of one budget."""

    def __init__(self, budget: str) -> None:
        self.encoded = quote(budget, safe="")
        base = f"{PREFIX}{{{self.encoded}}}:"
        self.tat, self.hb, self.m, self.info = (base + k for k in ("tat", "hb", "m", "info"))
        self.gprefix = base + "g:"


class RedisBackend:
    """A quota store on a Redis server ≥ 6.2 (see the module docstring)."""

    remote = True

    def __init__(self, spec: RedisSpec, *, params: QuotaParams) -> None:
        self._spec = spec
        self._params = params
        self._client: Redis | None = None
        self._scripts: dict[str, Any] = {}
        #: tests only: feed the scripts this clock instead of the server's TIME
        self.now_override: float | None = None

    def describe(self) -> str:
        return self._spec.describe()

    def _redis(self) -> Redis:
        if self._client is None:
            timeout = self._params.store_timeout_s
            try:
                self._client = Redis.from_url(
                    self._spec.url, decode_responses=True, socket_connect_timeout=timeout,
                    socket_timeout=timeout, retry=Retry(NoBackoff(), 0),
                    client_name="cams-enrich-quota",
                )
            except ValueError as exc:
                raise StoreUnavailable(self._clean(exc)) from None
            for name, text in (("acquire", ACQUIRE_LUA), ("heartbeat", HEARTBEAT_LUA),
                               ("leave", LEAVE_LUA)):
                self._scripts[name] = self._client.register_script(text)
        return self._client

    def _clean(self, exc: BaseException) -> str:
        return scrub(one_line(str(exc) or type(exc).__name__), self._spec.secrets)

    async def _call(self, name: str, keys: list[str], args: list[object]) -> Any:
        client = self._redis()
        try:
            return await self._scripts[name](keys=keys, args=args, client=client)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(self._clean(exc)) from None

    def _override(self) -> str:
        return "" if self.now_override is None else repr(self.now_override)

    @staticmethod
    def _info_json(info: MemberInfo) -> str:
        return json.dumps({"pid": info.pid, "host": info.host, "input": info.input,
                           "joined": info.joined})

    async def register(self, info: MemberInfo) -> float:
        return await self._heartbeat(info)

    async def heartbeat(self, info: MemberInfo) -> None:
        await self._heartbeat(info)

    async def _heartbeat(self, info: MemberInfo) -> float:
        keys = _Keys(info.budget)
        now = await self._call(
            "heartbeat", [keys.hb, keys.m, keys.info, BUDGETS_KEY],
            [info.id, repr(info.rate), self._info_json(info), keys.encoded,
             repr(self._params.ttl_s), keys.gprefix, EXPIRE_MS, self._override()],
        )
        return float(now)

    async def take(self, info: MemberInfo, want: int) -> list[float]:
        sent = time.monotonic()
        now, _pace, _busy, slots = await self.take_raw(info, want)
        # the server read its clock about half-way between sending and receiving
        mid = (sent + time.monotonic()) / 2
        return [mid + (slot - now) for slot in slots]

    async def take_raw(self, info: MemberInfo, want: int) -> tuple[float, float, int, list[float]]:
        """``(now, pace, busy, slots)`` by the server's clock (a test compares with ``step``)."""
        keys = _Keys(info.budget)
        p = self._params
        out = await self._call(
            "acquire", [keys.tat, keys.hb, keys.m, keys.info, BUDGETS_KEY],
            [info.id, repr(info.rate), want, self._info_json(info), keys.encoded,
             repr(p.headroom), repr(p.ttl_s), repr(p.idle_grace_s), repr(p.backlog_s),
             repr(p.horizon_s), self._override(), keys.gprefix, EXPIRE_MS],
        )
        return float(out[0]), float(out[1]), int(out[2]), [float(s) for s in out[3:]]

    async def leave(self, info: MemberInfo) -> None:
        keys = _Keys(info.budget)
        await self._call("leave", [keys.hb, keys.m, keys.info], [info.id, keys.gprefix])

    async def status(self) -> list[BudgetStatus]:
        client = self._redis()
        try:
            return await self._status(client)
        except (RedisError, OSError, TimeoutError) as exc:
            raise StoreUnavailable(self._clean(exc)) from None

    async def _status(self, client: Redis) -> list[BudgetStatus]:
        secs, micros = await client.time()
        now = secs + micros / 1e6
        ttl = self._params.ttl_s
        budgets = [str(b) for b in await client.zrangebyscore(BUDGETS_KEY, now - ttl, "+inf")]
        result: list[BudgetStatus] = []
        for encoded in budgets:
            base = f"{PREFIX}{{{encoded}}}:"
            alive = [str(m) for m in await client.zrangebyscore(base + "hb", now - ttl, now + ttl)]
            if not alive:
                continue
            async with client.pipeline(transaction=False) as pipe:
                pipe.hmget(base + "m", alive)
                pipe.hmget(base + "info", alive)
                for who in alive:
                    pipe.hgetall(base + "g:" + who)
                replies = await pipe.execute()
            rows = [
                _member_status(state, info, counts, now=now, params=self._params)
                for state, info, counts in zip(replies[0], replies[1], replies[2:], strict=True)
                if state and info
            ]
            if rows:
                result.append(budget_status(unquote(encoded), rows, self._params))
        return sorted(result, key=lambda b: b.name)

    async def aclose(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(RedisError, OSError):  # already gone: nothing to release
                await client.aclose()


def _member_status(state: str, info: str, counts: dict[str, str], *, now: float,
                   params: QuotaParams) -> tuple[float, MemberStatus]:
    rate, nxt, _last, backlog = state.split(" ")
    meta = json.loads(info)
    joined = float(meta["joined"])
    per_sec = {int(k): int(v) for k, v in counts.items()}
    busy = backlog == "1" and now <= float(nxt) + params.idle_grace_s
    return joined, MemberStatus(
        pid=int(meta["pid"]), host=str(meta["host"]), input=str(meta["input"]),
        rate=float(rate), recent_rate=window_rate(per_sec, now=now, joined=joined),
        joined_at=joined, busy=busy,
    )

