"""The benchmark's PostgreSQL databases.

One database per (trees, seed), seeded once with `treegate migrate` and `treegate seed` and then
reused: `treegate_bench_70642` (seed 0) or `treegate_bench_70642_s7`. A small table in it,
`bench_seed`, records the size, the seed and how long seeding took; a database without that
record (a seed that did not finish) is dropped and seeded again. The read queries run on it
directly; Q5 writes, so it runs on a copy made from it as a template and dropped afterwards,
and the seeded database stays as the seeder made it.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

ROOT = Path(__file__).resolve().parent.parent
"""This checkout; by default also the Treegate under test (`--treegate` names another)."""
SEED_RECORD = "bench_seed"
_SEEDED = re.compile(r"seeded (\d+) trees, (\d+) messages, (\d+) users")

Log = Callable[[str], None]


@dataclass(frozen=True, slots=True)
class SeededDatabase:
    name: str
    url: str
    trees: int
    seed: int
    messages: int
    users: int
    seed_seconds: float
    """How long `treegate seed` took when this database was made (not on reuse)."""
    vacuum_seconds: float
    reused: bool
    seeded_at: str
    seeder_changed: bool
    """The seeder's source differs from the one that seeded this database."""


@dataclass(frozen=True, slots=True)
class LogRow:
    sequence: int
    tree_id: str
    from_state: str | None
    to_state: str
    operation: str


@dataclass(frozen=True, slots=True)
class Snapshot:
    """Every tree's (state, lang), and the last sequence of the transition log."""

    trees: dict[str, tuple[str, str]]
    sequence: int


def database_url(server_url: str, name: str) -> str:
    return f"{server_url.rstrip('/')}/{name}"


def database_name(trees: int, seed: int) -> str:
    return f"treegate_bench_{trees}" + ("" if seed == 0 else f"_s{seed}")


async def _run(url: str, work: Callable[[Any], Any]) -> Any:
    conn = await asyncpg.connect(url, timeout=10)
    try:
        return await work(conn)
    finally:
        await conn.close()


def fetch(url: str, sql: str, *args: object) -> list[Any]:
    """Rows of one statement, on a connection of its own (closed afterwards)."""
    return list(asyncio.run(_run(url, lambda conn: conn.fetch(sql, *args))))


def execute(url: str, sql: str, *args: object) -> str:
    return str(asyncio.run(_run(url, lambda conn: conn.execute(sql, *args))))


def treegate_env(url: str, base: Mapping[str, str]) -> dict[str, str]:
    return {**base, "TREEGATE_DATABASE_URL": url}


def treegate(args: Sequence[str], env: Mapping[str, str], timeout: float, root: Path) -> str:
    """Run `root`'s `treegate` command line; its standard output, or an error with its output."""
    done = subprocess.run(
        [str(root / ".venv" / "bin" / "treegate"), *args],
        env=dict(env),
        cwd=root,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"treegate {' '.join(args)} failed ({done.returncode}):\n{done.stdout}{done.stderr}"
        )
    return done.stdout


def seeder_digest(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted((root / "db" / "seed").glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _exists(server_url: str, name: str) -> bool:
    admin = database_url(server_url, "postgres")
    return bool(fetch(admin, "SELECT 1 FROM pg_database WHERE datname = $1", name))


def drop(server_url: str, name: str) -> None:
    admin = database_url(server_url, "postgres")
    execute(admin, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _record(url: str) -> Any | None:
    rows = fetch(url, "SELECT to_regclass($1) IS NOT NULL AS present", SEED_RECORD)
    if not rows[0]["present"]:
        return None
    found = fetch(url, f"SELECT * FROM {SEED_RECORD} ORDER BY seeded_at DESC LIMIT 1")
    return found[0] if found else None


def ensure_seeded(
    server_url: str,
    trees: int,
    seed: int,
    env: Mapping[str, str],
    log: Log,
    *,
    root: Path,
    reseed: bool,
) -> SeededDatabase:
    """The seeded database for (trees, seed): reused when its record matches, else made."""
    name = database_name(trees, seed)
    url = database_url(server_url, name)
    digest = seeder_digest(root)
    db_env = treegate_env(url, env)
    if _exists(server_url, name) and not reseed:
        record = _record(url)
        if record is not None and record["trees"] == trees and record["seed"] == seed:
            log(f"reusing {name} (seeded {record['seeded_at']:%Y-%m-%d %H:%M} UTC)")
            treegate(["migrate"], db_env, timeout=300, root=root)
            changed = record["seeder_sha256"] != digest
            if changed:
                log("note: db/seed/ changed since this database was seeded (--reseed redoes it)")
            return SeededDatabase(
                name=name,
                url=url,
                trees=trees,
                seed=seed,
                messages=int(record["messages"]),
                users=int(record["users"]),
                seed_seconds=float(record["seed_seconds"]),
                vacuum_seconds=float(record["vacuum_seconds"]),
                reused=True,
                seeded_at=f"{record['seeded_at']:%Y-%m-%dT%H:%M:%SZ}",
                seeder_changed=changed,
            )
        log(f"{name} exists without a matching seed record: seeding it again")
    drop(server_url, name)
    execute(database_url(server_url, "postgres"), f'CREATE DATABASE "{name}"')
    treegate(["migrate"], db_env, timeout=300, root=root)
    log(f"seeding {name}: treegate seed --trees {trees} --seed {seed} ...")
    started = time.monotonic()
    output = treegate(
        ["seed", "--trees", str(trees), "--seed", str(seed)],
        db_env,
        timeout=300 + trees / 200,
        root=root,
    )
    seed_seconds = time.monotonic() - started
    found = _SEEDED.search(output)
    if found is None:
        raise RuntimeError(f"unexpected output of treegate seed: {output!r}")
    messages, users = int(found.group(2)), int(found.group(3))
    log(
        f"seeded {trees:,} trees, {messages:,} messages in {seed_seconds:.1f} s; VACUUM ANALYZE ..."
    )
    # What autovacuum would do on its own some time later, done now so that it does not run
    # during a measurement, and so that count(*) can use index-only scans from the start.
    started = time.monotonic()
    execute(url, "VACUUM (ANALYZE)")
    vacuum_seconds = time.monotonic() - started
    execute(
        url,
        f"""CREATE TABLE {SEED_RECORD} (
            trees integer NOT NULL, seed integer NOT NULL, messages integer NOT NULL,
            users integer NOT NULL, seed_seconds double precision NOT NULL,
            vacuum_seconds double precision NOT NULL, seeder_sha256 text NOT NULL,
            seeded_at timestamptz NOT NULL DEFAULT now())""",
    )
    execute(
        url,
        f"INSERT INTO {SEED_RECORD} (trees, seed, messages, users, seed_seconds, vacuum_seconds, "
        "seeder_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        trees,
        seed,
        messages,
        users,
        seed_seconds,
        vacuum_seconds,
        digest,
    )
    record = _record(url)
    assert record is not None
    return SeededDatabase(
        name=name,
        url=url,
        trees=trees,
        seed=seed,
        messages=messages,
        users=users,
        seed_seconds=seed_seconds,
        vacuum_seconds=vacuum_seconds,
        reused=False,
        seeded_at=f"{record['seeded_at']:%Y-%m-%dT%H:%M:%SZ}",
        seeder_changed=False,
    )


def clone(server_url: str, template: str, name: str) -> str:
    """A copy of `template` named `name` (dropped first if present); its URL."""
    drop(server_url, name)
    admin = database_url(server_url, "postgres")
    version = int(fetch(admin, "SHOW server_version_num")[0][0])
    strategy = " STRATEGY FILE_COPY" if version >= 150000 else ""
    for attempt in range(20):  # the template must have no other session, e.g. autovacuum's
        try:
            execute(admin, f'CREATE DATABASE "{name}" TEMPLATE "{template}"{strategy}')
            break
        except asyncpg.ObjectInUseError:
            if attempt == 19:
                raise
            time.sleep(0.5)
    return database_url(server_url, name)


def server_version(url: str) -> str:
    return str(fetch(url, "SHOW server_version")[0][0])


def sample_tree_ids(url: str, count: int, state: str | None = None) -> list[str]:
    """`count` tree ids in a fixed pseudo-random order (the same on every run)."""
    where = "" if state is None else "WHERE state = $2"
    args: list[object] = [count] if state is None else [count, state]
    rows = fetch(
        url,
        f"SELECT message_tree_id::text FROM message_tree_state {where} "
        "ORDER BY md5(message_tree_id::text) LIMIT $1",
        *args,
    )
    return [row[0] for row in rows]


def sample_trees_of_size(url: str, count: int, messages: int) -> list[str]:
    """`count` ids of trees of exactly `messages` messages, none of them deleted (so every
    answer holds all of them), in a fixed pseudo-random order (the same on every run)."""
    rows = fetch(
        url,
        "SELECT message.message_tree_id::text FROM message "
        "JOIN message_tree_state ON message_tree_state.message_tree_id = message.message_tree_id "
        "GROUP BY message.message_tree_id HAVING count(*) = $2 AND NOT bool_or(message.deleted) "
        "ORDER BY md5(message.message_tree_id::text) LIMIT $1",
        count,
        messages,
    )
    return [row[0] for row in rows]


def tree_with_deleted_messages(url: str) -> str | None:
    """A tree with a deleted message below its root (the same on every run), if any."""
    rows = fetch(
        url,
        "SELECT message.message_tree_id::text FROM message "
        "JOIN message_tree_state ON message_tree_state.message_tree_id = message.message_tree_id "
        "WHERE message.deleted AND message.parent_id IS NOT NULL "
        "ORDER BY md5(message.message_tree_id::text) LIMIT 1",
    )
    return str(rows[0][0]) if rows else None


def busiest_languages(url: str, count: int) -> list[str]:
    """The languages with the most trees waiting for the lottery."""
    rows = fetch(
        url,
        "SELECT lang FROM message_tree_state WHERE state = 'prompt_lottery_waiting' "
        "GROUP BY lang ORDER BY count(*) DESC, lang LIMIT $1",
        count,
    )
    return [row[0] for row in rows]


def growing_count(url: str, lang: str) -> int:
    rows = fetch(
        url,
        "SELECT count(*) FROM message_tree_state WHERE state = 'growing' AND lang = $1",
        lang,
    )
    return int(rows[0][0])


def growing_ids(url: str, langs: Sequence[str]) -> list[str]:
    rows = fetch(
        url,
        "SELECT message_tree_id::text FROM message_tree_state "
        "WHERE state = 'growing' AND lang = ANY($1) ORDER BY md5(message_tree_id::text)",
        list(langs),
    )
    return [row[0] for row in rows]


def limit_growing(url: str, langs: Sequence[str], keep: int) -> int:
    """Q5's starting point: halt all but `keep` growing trees of each language (no log rows).

    The seed has hundreds of growing trees in the big languages, far above the lottery's cap,
    so no draw could succeed there; with `keep` below the cap, draws have free slots.
    """
    status = execute(
        url,
        """UPDATE message_tree_state SET state = 'halted_by_moderator', active = false
        WHERE message_tree_id IN (
            SELECT message_tree_id FROM (
                SELECT message_tree_id,
                       row_number() OVER (PARTITION BY lang ORDER BY message_tree_id) AS n
                FROM message_tree_state WHERE state = 'growing' AND lang = ANY($1)
            ) ranked WHERE n > $2)""",
        list(langs),
        keep,
    )
    return int(status.split()[-1])


def snapshot(url: str) -> Snapshot:
    async def work(conn: Any) -> Snapshot:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            rows = await conn.fetch(
                "SELECT message_tree_id::text, state, lang FROM message_tree_state"
            )
            sequence = await conn.fetchval(
                "SELECT coalesce(max(sequence), 0) FROM treegate_transition"
            )
        return Snapshot({row[0]: (row[1], row[2]) for row in rows}, int(sequence))

    result: Snapshot = asyncio.run(_run(url, work))
    return result


def log_rows_after(url: str, sequence: int) -> list[LogRow]:
    rows = fetch(
        url,
        "SELECT sequence, message_tree_id::text, from_state, to_state, operation "
        "FROM treegate_transition WHERE sequence > $1 ORDER BY sequence",
        sequence,
    )
    return [LogRow(int(r[0]), r[1], r[2], r[3], r[4]) for r in rows]


def wait_until_idle(url: str, name: str, timeout: float = 15.0) -> bool:
    """Wait until no session on database `name` runs a statement or holds a transaction open
    (requests wrk abandoned at the end of a run still finish on the server)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = fetch(
            url,
            "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid() "
            "AND state IN ('active', 'idle in transaction')",
            name,
        )[0][0]
        if busy == 0:
            return True
        time.sleep(0.1)
    return False
