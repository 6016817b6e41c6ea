"""Settings, read from `TREEGATE_*` environment variables (and an optional `.env` file).

Built in the app factory or the CLI, never at import time. The README lists every one.
"""

from __future__ import annotations

import os
import random
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.engine import PoolOptions, normalize_url
from db.faults import Backoff
from domain.lottery import MAX_ACTIVE_TREES
from domain.transitions import Role
from gql.cors import ANY as ANY_ORIGIN
from gql.cors import parse_origins
from gql.rate_limits import CALLER_CLASSES, Rate, describe_defaults, parse_defaults
from resolvers.context import Limits, WritePolicy
from resolvers.loaders import DEFAULT_MAX_TREE_MESSAGES
from schema.limits import DocumentLimits, list_sizes

_POOL = PoolOptions()
"""The pool's defaults, described where the pool is (`db.engine.PoolOptions`)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="TREEGATE_", env_file=".env", extra="ignore", frozen=True
    )

    env: Literal["development", "production"] = Field(
        "development", description="`production` turns off GraphiQL and anonymous access."
    )
    database_url: str = Field(
        "sqlite:///./treegate.db",
        description="postgresql://user@host/db (asyncpg) or sqlite:///path (aiosqlite).",
    )
    read_database_urls: str = Field(
        "",
        description="PostgreSQL read replicas, comma-separated: queries read there, mutations "
        "and key lookups on the primary (empty: everything on the primary).",
    )
    replica_check_s: float = Field(
        1.0, gt=0, description="Seconds between health checks of each read replica."
    )
    replica_max_lag_s: float = Field(
        5.0,
        gt=0,
        description="A replica whose replay lags more seconds than this is out of rotation.",
    )
    host: str = Field("127.0.0.1", description="Address `treegate serve` binds.")
    port: int = Field(8000, ge=1, le=65535, description="Port `treegate serve` binds.")
    workers: int = Field(
        1, ge=1, description="Server processes `treegate serve` starts (above 1: PostgreSQL only)."
    )
    graphiql: bool | None = Field(
        None, description="Serve GraphiQL on GET /graphql; default: on in development only."
    )
    max_page_size: int = Field(100, ge=1, description="Largest `first` a list field accepts.")
    default_page_size: int = Field(50, ge=1, description="`first` when a client sends null.")
    max_tree_messages: int = Field(
        DEFAULT_MAX_TREE_MESSAGES,
        ge=1,
        description="Most messages a request reads of one tree; a larger tree's tree-wide "
        "fields answer TREE_TOO_LARGE.",
    )
    db_pool_size: int = Field(_POOL.size, ge=1, description="Connections kept open per process.")
    db_max_overflow: int = Field(
        _POOL.max_overflow,
        ge=0,
        description="Extra connections opened under a burst and closed after (off: requests "
        "queue for a pooled connection).",
    )
    db_pool_timeout: float = Field(
        _POOL.timeout, gt=0, description="Seconds a request waits for a free connection, then 503."
    )
    db_connect_timeout: float = Field(
        _POOL.connect_timeout, gt=0, description="Seconds to open a database connection."
    )
    db_statement_timeout_ms: int = Field(
        _POOL.statement_timeout_ms,
        ge=0,
        description="PostgreSQL statement_timeout per connection (0: none).",
    )
    db_lock_timeout_ms: int = Field(
        _POOL.lock_timeout_ms,
        ge=1,
        description="PostgreSQL lock_timeout; SQLite's busy timeout (a conflict, retried).",
    )
    db_idle_in_transaction_timeout_ms: int = Field(
        _POOL.idle_in_transaction_timeout_ms,
        ge=0,
        description="PostgreSQL idle_in_transaction_session_timeout (0: none).",
    )
    db_probe_interval_s: float = Field(
        _POOL.probe_interval_s,
        gt=0,
        description="While the database is down: one connection attempt per interval (s).",
    )
    db_retry_attempts: int = Field(
        3,
        ge=1,
        description="Tries of a mutation's transaction on a conflict (deadlock, lock timeout).",
    )
    db_ping_idle_s: float = Field(
        _POOL.ping_idle_s,
        ge=0,
        description="Ping a pooled PostgreSQL connection before use if idle this long (s).",
    )
    ready_timeout: float = Field(2.0, gt=0, description="Seconds /readyz waits for the database.")
    migrate_wait_s: float = Field(
        0, ge=0, description="Seconds `treegate migrate` waits for the database (`--wait`)."
    )
    max_concurrent_requests: int = Field(
        256,
        ge=1,
        description="GraphQL requests one process serves at once; more get 503 at once.",
    )
    shutdown_grace_s: int = Field(
        20,
        ge=0,
        description="On SIGTERM: seconds in-flight requests get to finish before they are cut.",
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    anonymous_role: Literal["none", "reader", "operator", "moderator", "admin"] | None = Field(
        None,
        description="Role of keyless requests: default reader (development), none (production).",
    )
    max_active_trees: int = Field(
        MAX_ACTIVE_TREES, ge=0, description="Growing trees per language the lottery allows."
    )
    max_activate: int = Field(100, ge=1, description="The largest `maxActivate` a draw accepts.")
    max_bulk: int = Field(
        1_000, ge=1, description="The largest `limit` of one `transitionTrees` call."
    )
    idempotency_ttl_hours: float = Field(
        24.0, gt=0, description="How long an idempotency key is remembered."
    )
    prune_interval_s: float = Field(
        300.0,
        ge=0,
        description="Seconds between deletions of expired idempotency keys by the server (0: off).",
    )
    introspection: bool | None = Field(
        None, description="Answer introspection queries; default: on in development only."
    )
    max_body_bytes: int = Field(
        262_144, ge=1024, description="Largest request body; larger ones get 413 unread."
    )
    max_tokens: int = Field(2_000, ge=10, description="Most tokens a document may have.")
    max_depth: int = Field(10, ge=1, description="Deepest field nesting a document may have.")
    max_aliases: int = Field(15, ge=0, description="Most aliases a document may have.")
    max_directives: int = Field(10, ge=0, description="Most directives a document may have.")
    max_cost: int = Field(
        50_000,
        ge=1,
        description="Highest estimated cost of an operation (a page's `first` multiplies).",
    )
    max_batch: int = Field(
        1, ge=1, description="Operations a JSON array request may hold (1: batching off)."
    )
    count_cache_s: float = Field(
        1.0,
        ge=0,
        description="Seconds a count (totalCount, treeStateCounts) is shared by requests; 0: off.",
    )
    response_cache_s: float = Field(
        1.0,
        ge=0,
        description="Seconds an answer to a GET query is shared by identical requests; 0: off.",
    )
    cache_control: str = Field(
        "no-cache", description="`Cache-Control` of GET query answers (clients revalidate)."
    )
    persisted_queries: Literal["automatic", "allowlist"] = Field(
        "automatic",
        description="`allowlist`: only documents registered with `treegate persisted add` run.",
    )
    apq_cache_size: int = Field(
        1_000, ge=1, description="Documents the automatic persisted-query store keeps."
    )
    compiled_reads: bool = Field(
        True, description="Serve known read documents through the compiled path (schema/fast)."
    )
    lottery_seed: int | None = Field(
        None, description="Seed the lottery's random source (tests, demos)."
    )
    cors_origins: str = Field(
        "",
        description="Origins whose pages may call Treegate (CORS), comma-separated "
        "scheme://host[:port], or `*` (without credentials); empty: none, no CORS headers.",
    )
    cors_allow_credentials: bool = Field(
        False,
        description="Answer allowed origins with `Access-Control-Allow-Credentials: true` "
        "(not with `*`).",
    )
    tracing: Literal["auto", "on", "off"] = Field(
        "auto",
        description="OpenTelemetry tracing (OTLP over HTTP, configured by the standard OTEL_* "
        "variables); `auto`: on when OTEL_TRACES_EXPORTER (not `none`) or an "
        "OTEL_EXPORTER_OTLP_(TRACES_)ENDPOINT is set. OTEL_SDK_DISABLED=true or "
        "OTEL_TRACES_EXPORTER=none turn it off.",
    )

    rate_limits: str = Field(
        "",
        description="Default request rates, comma-separated who=N/s (or N/min, N/h, "
        f"unlimited), who: {', '.join(CALLER_CLASSES)} (anonymous: per client address); "
        "unnamed: unlimited. A key's own `--rate-limit` wins.",
    )

    rate_limit_redis_url: str = Field(
        "",
        description="Redis where every process keeps the rate limits' buckets "
        "(redis://host:6379/0): limits over the whole deployment; empty: each process its own.",
    )

    @field_validator("rate_limit_redis_url")
    @classmethod
    def _check_redis_url(cls, value: str) -> str:
        url = value.strip()
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("write redis://host[:port][/db] (rediss:// with TLS, or unix://)")
        return url

    @field_validator("rate_limits")
    @classmethod
    def _check_rate_limits(cls, value: str) -> str:
        return describe_defaults(parse_defaults(value))

    @field_validator("cors_origins")
    @classmethod
    def _check_cors_origins(cls, value: str) -> str:
        return ",".join(parse_origins(value))

    @field_validator("read_database_urls")
    @classmethod
    def _check_read_urls(cls, value: str, info: ValidationInfo) -> str:
        urls = [url.strip() for url in value.split(",") if url.strip()]
        if not urls:
            return ""
        primary = info.data.get("database_url")
        if primary is not None and normalize_url(primary).get_backend_name() != "postgresql":
            raise ValueError(
                "read replicas need PostgreSQL: TREEGATE_DATABASE_URL is not a postgresql:// "
                "URL (SQLite has no replicas); unset TREEGATE_READ_DATABASE_URLS"
            )
        for url in urls:
            try:
                backend = normalize_url(url).get_backend_name()
            except Exception:  # any parse failure: the same refusal, said once
                backend = None
            if backend != "postgresql":
                raise ValueError("every read replica must be a postgresql:// URL")
        return ",".join(urls)

    @model_validator(mode="before")
    @classmethod
    def _page_sizes(cls, data: Any) -> Any:
        # Lowering only the maximum lowers the default with it; setting both inconsistently
        # is a mistake worth refusing.
        if isinstance(data, dict) and "max_page_size" in data and "default_page_size" not in data:
            data = {**data, "default_page_size": min(50, int(data["max_page_size"]))}
        return data

    @model_validator(mode="after")
    def _check_page_sizes(self) -> Settings:
        if self.default_page_size > self.max_page_size:
            raise ValueError("default_page_size must not exceed max_page_size")
        return self

    @model_validator(mode="after")
    def _check_cors(self) -> Settings:
        if self.cors_allow_credentials and ANY_ORIGIN in self.cors_origin_list:
            raise ValueError(
                "TREEGATE_CORS_ORIGINS=* cannot go with TREEGATE_CORS_ALLOW_CREDENTIALS=true "
                "(browsers refuse it, and it would let any site call with a user's "
                "credentials): name the origins"
            )
        return self

    @property
    def cors_origin_list(self) -> list[str]:
        """The origins allowed to call from a browser (none: CORS is off)."""
        return self.cors_origins.split(",") if self.cors_origins else []

    @property
    def rate_limit_defaults(self) -> dict[str, Rate | None]:
        """The default rate of keyless callers and of each role (absent: unlimited)."""
        return parse_defaults(self.rate_limits)

    @property
    def read_urls(self) -> list[str]:
        """The read replicas' URLs (none: everything reads from the primary)."""
        return self.read_database_urls.split(",") if self.read_database_urls else []

    @property
    def anonymous(self) -> Role | None:
        name = self.anonymous_role or ("none" if self.env == "production" else "reader")
        return None if name == "none" else Role[name.upper()]

    @property
    def write_policy(self) -> WritePolicy:
        return WritePolicy(
            max_active_trees=self.max_active_trees,
            max_activate=self.max_activate,
            max_bulk=self.max_bulk,
            idempotency_ttl=timedelta(hours=self.idempotency_ttl_hours),
            rng=random.Random(self.lottery_seed),
            retry=Backoff(attempts=self.db_retry_attempts),
        )

    @property
    def introspection_enabled(self) -> bool:
        return self.env == "development" if self.introspection is None else self.introspection

    @property
    def request_limits(self) -> Limits:
        return Limits(
            max_page_size=self.max_page_size,
            default_page_size=self.default_page_size,
            max_tree_messages=self.max_tree_messages,
        )

    @property
    def document_limits(self) -> DocumentLimits:
        return DocumentLimits(
            max_tokens=self.max_tokens,
            max_depth=self.max_depth,
            max_aliases=self.max_aliases,
            max_directives=self.max_directives,
            max_cost=self.max_cost,
            max_page_size=self.max_page_size,
            list_sizes=list_sizes(self.max_tree_messages),
        )

    @property
    def graphiql_enabled(self) -> bool:
        return self.env == "development" if self.graphiql is None else self.graphiql

    @property
    def pool(self) -> PoolOptions:
        return PoolOptions(
            size=self.db_pool_size,
            max_overflow=self.db_max_overflow,
            timeout=self.db_pool_timeout,
            connect_timeout=self.db_connect_timeout,
            statement_timeout_ms=self.db_statement_timeout_ms,
            lock_timeout_ms=self.db_lock_timeout_ms,
            idle_in_transaction_timeout_ms=self.db_idle_in_transaction_timeout_ms,
            ping_idle_s=self.db_ping_idle_s,
            probe_interval_s=self.db_probe_interval_s,
        )

    def tracing_enabled(self, environ: Mapping[str, str] | None = None) -> bool:
        """Whether to trace (`gql.tracing`): the `tracing` setting and the standard OTEL_*
        variables of `environ` (the process's environment unless given)."""
        env = os.environ if environ is None else environ
        if env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
            return False
        exporters = env.get("OTEL_TRACES_EXPORTER", "").strip().lower()
        if exporters == "none" or self.tracing == "off":
            return False
        if self.tracing == "on":
            return True
        return bool(
            exporters
            or env.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
            or env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
        )
