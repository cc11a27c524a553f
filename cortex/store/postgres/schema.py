"""The PostgreSQL schema as numbered forward migrations, applied in order on open.

The applied version is kept in `cortex_schema`; opening processes take an advisory lock while
migrating, so several servers starting at once apply each migration exactly once.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "MIGRATION_LOCK", "TEXT_CONFIG", "VECTOR_INDEX_DIMS"]

# The key of the transaction-level advisory lock held while migrating (any constant bigint).
MIGRATION_LOCK = 0x636F72746578  # "cortex"

# The text search configuration of `fact_text.doc`: the default parser's words, Snowball English
# stemming (no stop words: queries drop them, as with SQLite). PostgreSQL has no diacritics
# folding without the `unaccent` extension, which is not assumed here.
TEXT_CONFIG = "cortex"

# Embedding sizes that get an HNSW index (all-MiniLM-L6-v2: 384). Vectors of other sizes are
# stored and searched exactly.
VECTOR_INDEX_DIMS: tuple[int, ...] = (384,)

MIGRATIONS: tuple[str, ...] = (
    # 1: tenants, facts, the ledger, Merkle subtree hashes, checkpoints (as in SQLite). Times are
    # microseconds since the epoch; tags and meta are canonical JSON text (hashed as stored).
    """
    CREATE TABLE tenants (
        id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name        text NOT NULL UNIQUE,
        created_at  bigint NOT NULL,
        next_seq    bigint NOT NULL DEFAULT 0,
        head_hash   bytea NOT NULL,
        -- The latest ledger timestamp: the tenant's clock never goes backwards, whichever
        -- server (and whichever machine's clock) appends next.
        last_ts     bigint NOT NULL DEFAULT 0
    );
    CREATE SEQUENCE fact_rowids AS bigint;
    CREATE TABLE facts (
        rowid_      bigint PRIMARY KEY,
        id          text NOT NULL,
        tenant_id   bigint NOT NULL REFERENCES tenants(id),
        project     text NOT NULL,
        content     text NOT NULL,
        fact_type   text NOT NULL,
        tags        text NOT NULL,
        source      text,
        confidence  double precision,
        valid_from  bigint NOT NULL,
        valid_until bigint,
        supersedes  text,
        created_at  bigint NOT NULL,
        meta        text NOT NULL,
        seq         bigint NOT NULL,
        deprecated_at      bigint,
        deprecation_reason text,
        superseded_by      text
    );
    CREATE UNIQUE INDEX facts_by_tenant_id ON facts(tenant_id, id);
    CREATE INDEX facts_by_tenant_seq ON facts(tenant_id, seq);
    CREATE TABLE fact_tags (
        tenant_id bigint NOT NULL,
        tag       text NOT NULL,
        fact_id   text NOT NULL,
        PRIMARY KEY (tenant_id, tag, fact_id)
    );
    CREATE TABLE transactions (
        tenant_id      bigint NOT NULL,
        seq            bigint NOT NULL,
        op             text NOT NULL,
        subject        text,
        actor          text,
        ts             text NOT NULL,
        payload        text NOT NULL,
        payload_digest bytea NOT NULL,
        prev_hash      bytea NOT NULL,
        hash           bytea NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    );
    CREATE INDEX transactions_changes ON transactions(tenant_id, subject) WHERE op <> 'store';
    -- The node (level, index) covers leaves [index * 2^level, (index + 1) * 2^level), keyed by
    -- the last leaf it covers: key order is completion order.
    CREATE TABLE merkle_nodes (
        tenant_id bigint NOT NULL,
        last_leaf bigint NOT NULL,
        level     integer NOT NULL,
        hash      bytea NOT NULL,
        PRIMARY KEY (tenant_id, last_leaf, level)
    );
    CREATE TABLE checkpoints (
        tenant_id bigint NOT NULL,
        tree_size bigint NOT NULL,
        root      bytea NOT NULL,
        ts        text NOT NULL,
        signature bytea NOT NULL,
        key_id    text NOT NULL,
        PRIMARY KEY (tenant_id, tree_size)
    );
    """,
    # 2: search. Full text (tsvector + GIN; content weighted B, tags A) and vectors (pgvector,
    # HNSW over cosine distance for the indexed sizes), both keyed by facts.rowid_.
    f"""
    CREATE TEXT SEARCH DICTIONARY cortex_english_stem (TEMPLATE = snowball, Language = english);
    CREATE TEXT SEARCH CONFIGURATION {TEXT_CONFIG} (COPY = simple);
    ALTER TEXT SEARCH CONFIGURATION {TEXT_CONFIG}
        ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
        WITH cortex_english_stem;
    CREATE TABLE fact_text (
        fact_rowid bigint PRIMARY KEY,
        tenant_id  bigint NOT NULL,
        doc        tsvector NOT NULL
    );
    CREATE INDEX fact_text_doc ON fact_text USING gin (doc);
    CREATE EXTENSION IF NOT EXISTS vector;
    CREATE TABLE fact_vectors (
        fact_rowid bigint PRIMARY KEY,
        tenant_id  bigint NOT NULL,
        model_id   text NOT NULL,
        embedding  vector NOT NULL
    );
    CREATE INDEX fact_vectors_by_tenant ON fact_vectors(tenant_id, fact_rowid);
    CREATE INDEX fact_vectors_by_model ON fact_vectors(tenant_id, model_id);
    """
    + "".join(
        f"CREATE INDEX fact_vectors_hnsw_{dim} ON fact_vectors USING hnsw"
        f" ((embedding::vector({dim})) vector_cosine_ops) WHERE vector_dims(embedding) = {dim};"
        for dim in VECTOR_INDEX_DIMS
    ),
    # 3 (CRYPTO): encryption at rest, as in SQLite: the data key version of a sealed fact row
    # (NULL: in the clear), data keys wrapped by the master key, the master key's record.
    """
    ALTER TABLE facts ADD COLUMN key_version integer;
    CREATE TABLE crypto_master (
        id          integer PRIMARY KEY CHECK (id = 1),
        version     integer NOT NULL,
        source      text NOT NULL,
        kdf         text,
        check_value bytea NOT NULL,
        created_at  bigint NOT NULL
    );
    CREATE TABLE data_keys (
        tenant_id  bigint NOT NULL REFERENCES tenants(id),
        version    integer NOT NULL,
        wrapped    bytea NOT NULL,
        created_at bigint NOT NULL,
        PRIMARY KEY (tenant_id, version)
    );
    """,
    # 4 (GATE): right to erasure, as in SQLite: a purged fact keeps its row with its content,
    # tags and meta destroyed; `purged_at` is the time of its `purge` entry.
    """
    ALTER TABLE facts ADD COLUMN purged_at bigint;
    ALTER TABLE facts ADD COLUMN purge_reason text;
    CREATE INDEX facts_purged ON facts(tenant_id, rowid_) WHERE purged_at IS NOT NULL;
    """,
    # 5: no foreign key from facts to tenants. Fact rows are inserted only by the store, with
    # the tenant id it read in the same transaction, and tenants are never deleted; the check
    # ran per row and, on a tenant row the previous write group holds locked, made a multixact
    # each time: ~9 % of batched ingest (bench/ingest.py, 9.3k -> 10.2k facts/s).
    """
    ALTER TABLE facts DROP CONSTRAINT IF EXISTS facts_tenant_id_fkey;
    """,
)
