"""Settings come from TREEGATE_* variables; database URLs are normalized to async drivers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from db.engine import PoolOptions, normalize_url
from domain.transitions import Role
from gql.settings import Settings


@pytest.fixture(autouse=True)
def _in_empty_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings also read `./.env`: run where there is none unless a test writes one.
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = Settings()
    assert settings.model_dump() == {
        "env": "development",
        "database_url": "sqlite:///./treegate.db",
        "read_database_urls": "",
        "replica_check_s": 1.0,
        "replica_max_lag_s": 5.0,
        "host": "127.0.0.1",
        "port": 8000,
        "workers": 1,
        "graphiql": None,
        "max_page_size": 100,
        "default_page_size": 50,
        "max_tree_messages": 1_000,
        "db_pool_size": 10,
        "db_max_overflow": 0,
        "db_pool_timeout": 2.0,
        "db_connect_timeout": 2.0,
        "db_statement_timeout_ms": 15_000,
        "db_lock_timeout_ms": 5_000,
        "db_idle_in_transaction_timeout_ms": 60_000,
        "db_probe_interval_s": 0.25,
        "db_retry_attempts": 3,
        "db_ping_idle_s": 1.0,
        "ready_timeout": 2.0,
        "migrate_wait_s": 0.0,
        "max_concurrent_requests": 256,
        "shutdown_grace_s": 20,
        "log_level": "info",
        "anonymous_role": None,
        "max_active_trees": 10,
        "max_activate": 100,
        "max_bulk": 1_000,
        "idempotency_ttl_hours": 24.0,
        "prune_interval_s": 300.0,
        "introspection": None,
        "max_body_bytes": 262_144,
        "max_tokens": 2_000,
        "max_depth": 10,
        "max_aliases": 15,
        "max_directives": 10,
        "max_cost": 50_000,
        "max_batch": 1,
        "count_cache_s": 1.0,
        "response_cache_s": 1.0,
        "cache_control": "no-cache",
        "persisted_queries": "automatic",
        "apq_cache_size": 1_000,
        "lottery_seed": None,
        "compiled_reads": True,
        "cors_origins": "",
        "cors_allow_credentials": False,
        "rate_limits": "",
        "rate_limit_redis_url": "",
        "tracing": "auto",
    }
    assert settings.graphiql_enabled is True
    assert settings.introspection_enabled is True
    assert settings.anonymous is Role.READER
    assert settings.write_policy.max_active_trees == 10
    assert settings.pool == PoolOptions(
        size=10, max_overflow=0, timeout=2.0, statement_timeout_ms=15_000
    )
    assert settings.write_policy.retry.attempts == 3
    assert settings.write_policy.max_bulk == 1_000


def test_reads_treegate_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREEGATE_ENV", "production")
    monkeypatch.setenv("TREEGATE_DATABASE_URL", "postgresql://oa@db.internal/oasst")
    monkeypatch.setenv("TREEGATE_HOST", "0.0.0.0")
    monkeypatch.setenv("TREEGATE_PORT", "9001")
    monkeypatch.setenv("TREEGATE_WORKERS", "4")
    monkeypatch.setenv("TREEGATE_MAX_PAGE_SIZE", "500")
    monkeypatch.setenv("TREEGATE_DEFAULT_PAGE_SIZE", "25")
    monkeypatch.setenv("TREEGATE_DB_POOL_SIZE", "3")
    monkeypatch.setenv("TREEGATE_DB_MAX_OVERFLOW", "0")
    monkeypatch.setenv("TREEGATE_DB_POOL_TIMEOUT", "1.5")
    monkeypatch.setenv("TREEGATE_DB_STATEMENT_TIMEOUT_MS", "0")
    monkeypatch.setenv("TREEGATE_READY_TIMEOUT", "0.5")
    monkeypatch.setenv("TREEGATE_LOG_LEVEL", "debug")
    monkeypatch.setenv("TREEGATE_DB_CONNECT_TIMEOUT", "0.75")
    monkeypatch.setenv("TREEGATE_DB_LOCK_TIMEOUT_MS", "800")
    monkeypatch.setenv("TREEGATE_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS", "9000")
    monkeypatch.setenv("TREEGATE_DB_PROBE_INTERVAL_S", "0.5")
    monkeypatch.setenv("TREEGATE_DB_RETRY_ATTEMPTS", "5")
    monkeypatch.setenv("TREEGATE_MAX_CONCURRENT_REQUESTS", "32")
    monkeypatch.setenv("TREEGATE_SHUTDOWN_GRACE_S", "7")
    monkeypatch.setenv("TREEGATE_MAX_BULK", "250")
    settings = Settings()
    assert settings.env == "production"
    assert settings.database_url == "postgresql://oa@db.internal/oasst"
    assert (settings.host, settings.port, settings.workers) == ("0.0.0.0", 9001, 4)
    assert (settings.max_page_size, settings.default_page_size) == (500, 25)
    assert settings.pool == PoolOptions(
        size=3,
        max_overflow=0,
        timeout=1.5,
        connect_timeout=0.75,
        statement_timeout_ms=0,
        lock_timeout_ms=800,
        idle_in_transaction_timeout_ms=9000,
        probe_interval_s=0.5,
    )
    assert settings.write_policy.retry.attempts == 5
    assert settings.write_policy.max_bulk == 250
    assert (settings.max_concurrent_requests, settings.shutdown_grace_s) == (32, 7)
    assert settings.ready_timeout == 0.5
    assert settings.log_level == "debug"
    assert settings.graphiql_enabled is False


def test_variables_without_the_prefix_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    monkeypatch.setenv("PORT", "1234")
    settings = Settings()
    assert settings.database_url == "sqlite:///./treegate.db"
    assert settings.port == 8000


def test_reads_dot_env_file_and_environment_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TREEGATE_PORT=7000\nTREEGATE_WORKERS=3\n")
    monkeypatch.setenv("TREEGATE_WORKERS", "5")
    settings = Settings()
    assert settings.port == 7000
    assert settings.workers == 5


@pytest.mark.parametrize(
    ("env", "graphiql", "enabled"),
    [
        ("development", None, True),
        ("production", None, False),
        ("development", "false", False),
        ("production", "true", True),
    ],
)
def test_graphiql_enabled_follows_env_unless_set(
    monkeypatch: pytest.MonkeyPatch, env: str, graphiql: str | None, enabled: bool
) -> None:
    monkeypatch.setenv("TREEGATE_ENV", env)
    if graphiql is not None:
        monkeypatch.setenv("TREEGATE_GRAPHIQL", graphiql)
    assert Settings().graphiql_enabled is enabled


def test_default_page_size_above_max_is_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREEGATE_MAX_PAGE_SIZE", "20")
    monkeypatch.setenv("TREEGATE_DEFAULT_PAGE_SIZE", "21")
    with pytest.raises(ValidationError, match="default_page_size must not exceed max_page_size"):
        Settings()


def test_default_page_size_equal_to_max_is_accepted() -> None:
    settings = Settings(max_page_size=20, default_page_size=20)
    assert settings.default_page_size == settings.max_page_size == 20


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TREEGATE_ENV", "staging"),
        ("TREEGATE_PORT", "0"),
        ("TREEGATE_PORT", "65536"),
        ("TREEGATE_WORKERS", "0"),
        ("TREEGATE_MAX_PAGE_SIZE", "0"),
        ("TREEGATE_READY_TIMEOUT", "0"),
        ("TREEGATE_DB_POOL_TIMEOUT", "-1"),
        ("TREEGATE_LOG_LEVEL", "verbose"),
    ],
)
def test_out_of_range_values_are_rejected(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError) as info:
        Settings()
    assert name.removeprefix("TREEGATE_").lower() in str(info.value)


def test_settings_are_frozen() -> None:
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgresql://user:pw@host:5433/db", "postgresql+asyncpg://user:pw@host:5433/db"),
        ("postgres://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("postgresql+asyncpg://user@host/db", "postgresql+asyncpg://user@host/db"),
        ("sqlite:///./treegate.db", "sqlite+aiosqlite:///./treegate.db"),
        ("sqlite:////var/lib/treegate.db", "sqlite+aiosqlite:////var/lib/treegate.db"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


@pytest.mark.parametrize(
    "url", ["mysql://user@host/db", "postgresql+psycopg2://user@host/db", "oracle://x@y/z"]
)
def test_normalize_url_refuses_other_databases(url: str) -> None:
    scheme = url.split(":", 1)[0]
    with pytest.raises(ValueError, match=re.escape(f"unsupported database URL scheme '{scheme}'")):
        normalize_url(url)


@pytest.mark.parametrize(("maximum", "default"), [(10, 10), (1, 1), (50, 50), (500, 50)])
def test_lowering_only_the_maximum_lowers_the_default(maximum: int, default: int) -> None:
    assert Settings(max_page_size=maximum).default_page_size == default


def test_lowering_only_the_maximum_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREEGATE_MAX_PAGE_SIZE", "20")
    settings = Settings()
    assert (settings.max_page_size, settings.default_page_size) == (20, 20)


@pytest.mark.parametrize(
    ("env", "configured", "expected"),
    [
        ("development", None, Role.READER),
        ("production", None, None),
        ("production", "reader", Role.READER),
        ("development", "none", None),
        ("development", "operator", Role.OPERATOR),
    ],
)
def test_anonymous_role(
    env: str, configured: str | None, expected: Role | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TREEGATE_ENV", env)
    if configured is not None:
        monkeypatch.setenv("TREEGATE_ANONYMOUS_ROLE", configured)
    assert Settings().anonymous is expected


def test_lottery_seed_makes_the_random_source_reproducible() -> None:
    first = Settings(lottery_seed=7).write_policy.rng
    second = Settings(lottery_seed=7).write_policy.rng
    assert [first.random() for _ in range(5)] == [second.random() for _ in range(5)]


def test_read_replicas_are_a_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TREEGATE_DATABASE_URL", "postgresql://oa@db-primary/oasst")
    monkeypatch.setenv(
        "TREEGATE_READ_DATABASE_URLS", " postgresql://oa@db-r1/oasst, postgres://oa@db-r2/oasst,"
    )
    monkeypatch.setenv("TREEGATE_REPLICA_CHECK_S", "0.5")
    monkeypatch.setenv("TREEGATE_REPLICA_MAX_LAG_S", "2")
    settings = Settings()
    assert settings.read_urls == ["postgresql://oa@db-r1/oasst", "postgres://oa@db-r2/oasst"]
    assert (settings.replica_check_s, settings.replica_max_lag_s) == (0.5, 2.0)
    assert Settings(read_database_urls=" , ").read_urls == []


def test_read_replicas_on_sqlite_are_refused() -> None:
    with pytest.raises(ValidationError, match="read replicas need PostgreSQL") as info:
        Settings(read_database_urls="postgresql://oa@db-r1/oasst")
    assert "read_database_urls" in str(info.value)


@pytest.mark.parametrize("url", ["sqlite:///replica.db", "mysql://db-r1/oasst", "not a url"])
def test_read_replicas_must_be_postgresql(url: str) -> None:
    with pytest.raises(ValidationError, match="every read replica must be a postgresql:// URL"):
        Settings(database_url="postgresql://oa@db-primary/oasst", read_database_urls=url)


def test_cors_origins_are_a_checked_comma_separated_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "TREEGATE_CORS_ORIGINS", " http://localhost:3000, https://App.example.org:8443 ,"
    )
    assert Settings().cors_origin_list == [
        "http://localhost:3000",
        "https://app.example.org:8443",
    ]
    assert Settings().cors_allow_credentials is False
    assert Settings(cors_origins=" , ").cors_origin_list == []
    assert Settings(cors_origins="*").cors_origin_list == ["*"]


@pytest.mark.parametrize(
    "origin",
    [
        "localhost:3000",
        "http://localhost:3000/",
        "https://app.example.org/app",
        "ftp://files.example.org",
        "http://",
        "http://localhost:notaport",
        "http://user@localhost",
        "http://localhost:3000?x=1",
    ],
)
def test_an_origin_with_a_path_or_without_a_scheme_is_refused(origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin: write scheme://host") as info:
        Settings(cors_origins=f"http://localhost:3000,{origin}")
    assert "cors_origins" in str(info.value)


def test_any_origin_with_credentials_is_refused() -> None:
    with pytest.raises(ValidationError, match="TREEGATE_CORS_ORIGINS=\\* cannot go with"):
        Settings(cors_origins="*", cors_allow_credentials=True)
    named = Settings(cors_origins="http://localhost:3000", cors_allow_credentials=True)
    assert named.cors_allow_credentials is True


OTLP = "http://collector:4318"


@pytest.mark.parametrize(
    ("tracing", "environ", "enabled"),
    [
        ("auto", {}, False),
        ("auto", {"OTEL_SERVICE_NAME": "gateway"}, False),
        ("auto", {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, True),
        ("auto", {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{OTLP}/v1/traces"}, True),
        ("auto", {"OTEL_TRACES_EXPORTER": "console"}, True),
        ("auto", {"OTEL_TRACES_EXPORTER": "otlp"}, True),
        ("auto", {"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, False),
        ("auto", {"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, False),
        ("auto", {"OTEL_SDK_DISABLED": "false", "OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, True),
        ("on", {}, True),
        ("on", {"OTEL_SDK_DISABLED": "TRUE"}, False),
        ("on", {"OTEL_TRACES_EXPORTER": "none"}, False),
        ("off", {"OTEL_EXPORTER_OTLP_ENDPOINT": OTLP}, False),
        ("off", {"OTEL_TRACES_EXPORTER": "otlp"}, False),
    ],
)
def test_tracing_is_on_when_the_otel_variables_or_the_switch_say_so(
    tracing: str, environ: dict[str, str], enabled: bool
) -> None:
    settings = Settings(tracing=tracing)
    assert settings.tracing_enabled(environ) is enabled


def test_tracing_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OTEL_SDK_DISABLED", "OTEL_TRACES_EXPORTER", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", OTLP)
    assert Settings().tracing_enabled() is True
    monkeypatch.setenv("TREEGATE_TRACING", "off")
    assert Settings().tracing == "off"
    assert Settings().tracing_enabled() is False
    monkeypatch.setenv("TREEGATE_TRACING", "sometimes")
    with pytest.raises(ValidationError):
        Settings()
