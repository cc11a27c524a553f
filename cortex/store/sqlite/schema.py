"""The SQLite schema as numbered forward migrations, applied in order on open."""

from __future__ import annotations

__all__ = ["FTS5_TOKENIZER", "MIGRATIONS"]

# Porter stemming over unicode61 words, diacritics folded; "_" keeps snake_case identifiers whole
# (their parts are indexed too: see cortex.search.text.index_text).
FTS5_TOKENIZER = "porter unicode61 remove_diacritics 2 tokenchars '_'"

MIGRATIONS: tuple[str, ...] = (
    # 1: tenants, facts, the ledger, Merkle subtree hashes, checkpoints.
    """
    CREATE TABLE tenants (
        id          INTEGER PRIMARY KEY,
        name        TEXT NOT NULL UNIQUE,
        created_at  INTEGER NOT NULL,
        next_seq    INTEGER NOT NULL DEFAULT 0,
        head_hash   BLOB NOT NULL
    );
    CREATE TABLE facts (
        rowid_      INTEGER PRIMARY KEY,
        id          TEXT NOT NULL,
        tenant_id   INTEGER NOT NULL REFERENCES tenants(id),
        project     TEXT NOT NULL,
        content     TEXT NOT NULL,
        fact_type   TEXT NOT NULL,
        tags        TEXT NOT NULL,
        source      TEXT,
        confidence  REAL,
        valid_from  INTEGER NOT NULL,
        valid_until INTEGER,
        supersedes  TEXT,
        created_at  INTEGER NOT NULL,
        meta        TEXT NOT NULL,
        seq         INTEGER NOT NULL,
        deprecated_at      INTEGER,
        deprecation_reason TEXT,
        superseded_by      TEXT
    );
    CREATE UNIQUE INDEX facts_by_tenant_id ON facts(tenant_id, id);
    CREATE INDEX facts_by_tenant_seq ON facts(tenant_id, seq);
    CREATE TABLE fact_tags (
        tenant_id INTEGER NOT NULL,
        tag       TEXT NOT NULL,
        fact_id   TEXT NOT NULL,
        PRIMARY KEY (tenant_id, tag, fact_id)
    ) WITHOUT ROWID;
    CREATE TABLE transactions (
        tenant_id      INTEGER NOT NULL,
        seq            INTEGER NOT NULL,
        op             TEXT NOT NULL,
        subject        TEXT,
        actor          TEXT,
        ts             TEXT NOT NULL,
        payload        TEXT NOT NULL,
        payload_digest BLOB NOT NULL,
        prev_hash      BLOB NOT NULL,
        hash           BLOB NOT NULL,
        PRIMARY KEY (tenant_id, seq)
    ) WITHOUT ROWID;
    -- Changes to existing facts, by the fact they change (a store entry is found by facts.seq).
    CREATE INDEX transactions_changes ON transactions(tenant_id, subject) WHERE op <> 'store';
    -- Hashes of complete, aligned subtrees. The node (level, index) covers leaves
    -- [index * 2^level, (index + 1) * 2^level); it is keyed by the last leaf it covers so that
    -- key order is the order in which nodes complete (what `verify` streams through).
    CREATE TABLE merkle_nodes (
        tenant_id INTEGER NOT NULL,
        last_leaf INTEGER NOT NULL,
        level     INTEGER NOT NULL,
        hash      BLOB NOT NULL,
        PRIMARY KEY (tenant_id, last_leaf, level)
    ) WITHOUT ROWID;
    CREATE TABLE checkpoints (
        tenant_id INTEGER NOT NULL,
        tree_size INTEGER NOT NULL,
        root      BLOB NOT NULL,
        ts        TEXT NOT NULL,
        signature BLOB NOT NULL,
        key_id    TEXT NOT NULL,
        PRIMARY KEY (tenant_id, tree_size)
    ) WITHOUT ROWID;
    """,
    # 2: search. Full text (FTS5, contentless: the text lives in `facts`) and vectors, both keyed
    # by facts.rowid_.
    f"""
    CREATE VIRTUAL TABLE fact_text USING fts5(
        content, tags, content = '', contentless_delete = 1, tokenize = "{FTS5_TOKENIZER}"
    );
    CREATE TABLE fact_vectors (
        fact_rowid INTEGER PRIMARY KEY,
        tenant_id  INTEGER NOT NULL,
        model_id   TEXT NOT NULL,
        vector     BLOB NOT NULL
    );
    CREATE INDEX fact_vectors_by_tenant ON fact_vectors(tenant_id, fact_rowid);
    """,
    # 3 (CRYPTO): encryption at rest. A fact row sealed with a data key names its version
    # (NULL: stored in the clear); data keys are kept wrapped by the master key, whose record
    # (source, passphrase parameters, check value) has one row in an encrypted store.
    """
    ALTER TABLE facts ADD COLUMN key_version INTEGER;
    CREATE TABLE crypto_master (
        id          INTEGER PRIMARY KEY CHECK (id = 1),
        version     INTEGER NOT NULL,
        source      TEXT NOT NULL,
        kdf         TEXT,
        check_value BLOB NOT NULL,
        created_at  INTEGER NOT NULL
    );
    CREATE TABLE data_keys (
        tenant_id  INTEGER NOT NULL REFERENCES tenants(id),
        version    INTEGER NOT NULL,
        wrapped    BLOB NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (tenant_id, version)
    ) WITHOUT ROWID;
    """,
    # 4 (GATE): right to erasure. A purged fact keeps its row (id, seq, times, names) with its
    # content, tags and meta destroyed; `purged_at` is the time of its `purge` entry. The partial
    # index lists a tenant's purged facts (for the search indexes, which must drop them).
    """
    ALTER TABLE facts ADD COLUMN purged_at INTEGER;
    ALTER TABLE facts ADD COLUMN purge_reason TEXT;
    CREATE INDEX facts_purged ON facts(tenant_id, rowid_) WHERE purged_at IS NOT NULL;
    """,
)
