-- Apps, repositories, links and per-link delivery state: the foundation.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
) WITHOUT ROWID;

CREATE TABLE apps (
    app_id          TEXT PRIMARY KEY,
    name            TEXT NOT NULL,
    email           TEXT NOT NULL,
    website         TEXT NOT NULL DEFAULT '',
    description     TEXT NOT NULL DEFAULT '',
    base_url        TEXT NOT NULL,
    client_auth_key BLOB NOT NULL,          -- sealed with the store key
    token_hash      TEXT NOT NULL UNIQUE,   -- SHA-256 of the bearer token; the token itself is never stored
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

CREATE TABLE repositories (
    repository_id        TEXT PRIMARY KEY,
    url                  TEXT NOT NULL,     -- canonical URL (github_url on the wire)
    url_key              TEXT NOT NULL,     -- identity: case-folded for GitHub
    clone_url            TEXT NOT NULL,
    owner                TEXT NOT NULL,
    name                 TEXT NOT NULL,
    branch               TEXT NOT NULL,
    is_github            INTEGER NOT NULL DEFAULT 0,
    is_private           INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    circuit_open_until   TEXT,              -- NULL: circuit closed
    last_git_error       TEXT NOT NULL DEFAULT '',
    created_at           TEXT NOT NULL,
    updated_at           TEXT NOT NULL,
    UNIQUE (url_key, branch)
);

CREATE TABLE links (
    app_id            TEXT NOT NULL REFERENCES apps (app_id) ON DELETE CASCADE,
    repository_id     TEXT NOT NULL REFERENCES repositories (repository_id) ON DELETE CASCADE,
    status            TEXT NOT NULL DEFAULT 'pending_snapshot',
    commit_sha        TEXT NOT NULL DEFAULT '',
    retry_count       INTEGER NOT NULL DEFAULT 0,
    last_error        TEXT NOT NULL DEFAULT '',
    git_token         BLOB,                 -- sealed; NULL: anonymous
    include_patterns  TEXT NOT NULL DEFAULT '[]',
    exclude_patterns  TEXT NOT NULL DEFAULT '[]',
    files_delivered   INTEGER NOT NULL DEFAULT 0,
    skipped_paths     INTEGER NOT NULL DEFAULT 0,
    last_scanned_at   TEXT,
    next_attempt_at   TEXT,
    sync_requested_at TEXT,
    lease_owner       TEXT,
    lease_expires_at  TEXT,
    generation        INTEGER NOT NULL DEFAULT 0, -- bumped by reset/re-register; a run of an older generation stops
    created_at        TEXT NOT NULL,
    updated_at        TEXT NOT NULL,
    PRIMARY KEY (app_id, repository_id)
) WITHOUT ROWID;

CREATE INDEX links_by_repository ON links (repository_id);

-- What each app has confirmed receiving: path -> sha. inflight_sha marks a change being sent.
CREATE TABLE delivery_state (
    app_id        TEXT NOT NULL,
    repository_id TEXT NOT NULL,
    path          TEXT NOT NULL,
    sha           TEXT,                     -- last sha the app confirmed; NULL: never confirmed
    inflight_sha  TEXT,                     -- set before a send, cleared when it succeeds
    PRIMARY KEY (app_id, repository_id, path),
    FOREIGN KEY (app_id, repository_id) REFERENCES links (app_id, repository_id) ON DELETE CASCADE
) WITHOUT ROWID;

-- git blob id -> content facts; blob ids are content hashes, so the cache is global.
CREATE TABLE blobs (
    blob_id TEXT PRIMARY KEY,
    sha256  TEXT NOT NULL,
    size    INTEGER NOT NULL,
    binary  INTEGER NOT NULL
) WITHOUT ROWID;
