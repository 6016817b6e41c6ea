"""Table definitions.

`message_tree_state`, `message`, `user` and `user_stats` mirror Open-Assistant's columns,
types and index names, so Treegate can serve an Open-Assistant database as it is. Treegate's
own tables are prefixed `treegate_`.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    Uuid,
    false,
    text,
    true,
)

from db.types import JSONType, TZDateTime

metadata = MetaData()

user = Table(
    "user",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("username", String(128), nullable=False),
    Column("auth_method", String(128), nullable=False, server_default="local"),
    Column("display_name", String(256), nullable=False),
    Column("created_date", TZDateTime(), nullable=False, server_default=text("CURRENT_TIMESTAMP")),
    Column("enabled", Boolean(), nullable=False, server_default=true()),
    Column("deleted", Boolean(), nullable=False, server_default=false()),
    Index("ix_user_username", "auth_method", "username", unique=True),
)

user_stats = Table(
    "user_stats",
    metadata,
    Column("user_id", Uuid(), ForeignKey("user.id"), primary_key=True),
    Column("time_frame", String(32), primary_key=True),
    Column("reply_ranked_1", Integer(), nullable=False, server_default=text("0")),
)

message = Table(
    "message",
    metadata,
    Column("id", Uuid(), primary_key=True),
    Column("parent_id", Uuid(), nullable=True),
    Column("message_tree_id", Uuid(), nullable=False, index=True),
    Column("user_id", Uuid(), ForeignKey("user.id"), nullable=True, index=True),
    Column("role", String(128), nullable=False),
    Column(
        "created_date",
        TZDateTime(),
        nullable=False,
        server_default=text("CURRENT_TIMESTAMP"),
        index=True,
    ),
    Column("payload_type", String(200), nullable=False),
    Column("payload", JSONType, nullable=True),
    Column("lang", String(32), nullable=False, server_default="en"),
    Column("depth", Integer(), nullable=False, server_default=text("0")),
    Column("children_count", Integer(), nullable=False, server_default=text("0")),
    Column("deleted", Boolean(), nullable=False, server_default=false()),
    Column("review_count", Integer(), nullable=False, server_default=text("0")),
    Column("review_result", Boolean(), nullable=True),
    Column("ranking_count", Integer(), nullable=False, server_default=text("0")),
    Column("rank", Integer(), nullable=True),
    Column("synthetic", Boolean(), nullable=False, server_default=false()),
    Column("edited", Boolean(), nullable=False, server_default=false()),
    Column("model_name", String(1024), nullable=True),
    Column("emojis", JSONType, nullable=True),
)

message_tree_state = Table(
    "message_tree_state",
    metadata,
    Column("message_tree_id", Uuid(), ForeignKey("message.id"), primary_key=True),
    Column("goal_tree_size", Integer(), nullable=False),
    Column("max_depth", Integer(), nullable=False),
    Column("max_children_count", Integer(), nullable=False),
    Column("state", String(128), nullable=False),
    Column("active", Boolean(), nullable=False),
    Column("origin", String(1024), nullable=True),
    Column("won_prompt_lottery_date", TZDateTime(), nullable=True),
    Column("lang", String(32), nullable=False),
    Index("ix_message_tree_state_active", "active"),
    Index("ix_message_tree_state__lang__state", "state", "lang"),
)

OPEN_ASSISTANT_TABLES = ("user", "user_stats", "message", "message_tree_state")

# --- Treegate's own tables -------------------------------------------------------------------

transition = Table(
    "treegate_transition",
    metadata,
    Column("sequence", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True),
    Column("message_tree_id", Uuid(), nullable=False),
    Column("from_state", String(128), nullable=True),
    Column("to_state", String(128), nullable=False),
    Column("operation", String(64), nullable=False),
    Column("actor", String(256), nullable=True),
    Column("reason", Text(), nullable=True),
    Column("at", TZDateTime(), nullable=False),
    Column("bulk_operation_id", Uuid(), nullable=True),
    Index("ix_treegate_transition_tree", "message_tree_id", "sequence"),
)
"""The transition log: one row per state change, in commit order (see `db.log`);
`bulk_operation_id` names the `transitionTrees` call that made the change, if one did."""

counter = Table(
    "treegate_counter",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("value", BigInteger(), nullable=False),
)
"""Named counters; the log's sequence is taken here under a row lock, so it follows commits."""

api_key = Table(
    "treegate_api_key",
    metadata,
    Column("name", String(128), primary_key=True),
    Column("role", String(32), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("created_at", TZDateTime(), nullable=False),
    Column("revoked_at", TZDateTime(), nullable=True),
    Column("rate_limit", String(32), nullable=True),
)
"""API keys, stored only as a SHA-256 of the key; the name is the actor in the log. `rate_limit`
is the key's own request rate (`gql.rate_limits`), null for its role's default."""

persisted_query = Table(
    "treegate_persisted_query",
    metadata,
    Column("sha256", String(64), primary_key=True),
    Column("document", Text(), nullable=False),
    Column("name", String(256), nullable=True),
    Column("created_at", TZDateTime(), nullable=False),
)
"""GraphQL documents registered with `treegate persisted add`, by the SHA-256 of their text."""

idempotency = Table(
    "treegate_idempotency",
    metadata,
    Column("scope", String(256), primary_key=True),
    Column("key", String(256), primary_key=True),
    Column("operation", String(64), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("result", JSONType, nullable=True),
    Column("created_at", TZDateTime(), nullable=False),
    Column("expires_at", TZDateTime(), nullable=False, index=True),
)
"""Idempotency keys: the first result of a mutation, per (API key, idempotency key)."""
