-- scimgate's schema on PostgreSQL (issue 16), beside schema.sql (SQLite).
--
-- The same tables, columns and encodings as schema.sql's latest migration, so that
-- `config copy-store` copies rows as they are and the store's Rust code reads both the same
-- way: integers (times in Unix seconds, counters, flags 0/1, the small codes of
-- tokens.kind / scopes / issued_via) are BIGINT, SHA-256 hashes BYTEA, SCIM documents the
-- JSON text the server renders (TEXT; filters cast it to jsonb).
--
-- Versions share schema.sql's numbers. PostgreSQL support begins at version 10: block 10
-- creates what schema.sql's blocks 1 to 10 made, and each later migration has the same
-- number in both files (11: leases, web sessions and the sign-in throttle, for several
-- instances). The version lives in the table scimgate_schema (one row),
-- and store::pg::migrate runs the blocks under an advisory lock, so two instances starting
-- at once migrate once.
--
-- SQLite's COLLATE NOCASE (ASCII case) becomes a unique index on lower(...) and queries
-- comparing lower(...) = lower($n).

-- migration: 10
CREATE TABLE clients (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    profile                 TEXT NOT NULL,
    grants                  TEXT NOT NULL,
    scopes                  TEXT NOT NULL,
    redirect_uris           TEXT NOT NULL,
    auth_method             TEXT NOT NULL,
    require_consent         BIGINT NOT NULL DEFAULT 0,
    secret_hash             BYTEA,
    secret_expires_at       BIGINT,
    secret_ttl              BIGINT,
    access_token_ttl        BIGINT NOT NULL,
    refresh_token_ttl       BIGINT NOT NULL,
    idp_kind                TEXT NOT NULL DEFAULT 'custom',
    idp_app_id              TEXT,
    idp_tenant              TEXT,
    owner_contact           TEXT,
    heartbeat_interval      BIGINT,
    missed_heartbeats       BIGINT NOT NULL DEFAULT 3,
    created_at              BIGINT NOT NULL,
    updated_at              BIGINT NOT NULL,
    deleted_at              BIGINT,
    token_epoch             BIGINT NOT NULL DEFAULT 0,
    disabled_at             BIGINT,
    require_pkce            BIGINT NOT NULL DEFAULT 0,
    email_domains           TEXT NOT NULL DEFAULT '',
    alert_emails            TEXT NOT NULL DEFAULT ''
);
CREATE UNIQUE INDEX clients_secret_hash ON clients(secret_hash) WHERE secret_hash IS NOT NULL;

CREATE TABLE client_cuts (
    client_id   TEXT NOT NULL REFERENCES clients(id),
    epoch       BIGINT NOT NULL,
    at          BIGINT NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (client_id, epoch)
);

CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,
    hash            BYTEA NOT NULL,
    kind            BIGINT NOT NULL CHECK (kind BETWEEN 1 AND 3),
    client_id       TEXT NOT NULL REFERENCES clients(id),
    subject         TEXT,
    scopes          BIGINT NOT NULL CHECK (scopes BETWEEN 0 AND 3),
    issued_at       BIGINT NOT NULL,
    expires_at      BIGINT NOT NULL,
    issued_via      BIGINT NOT NULL CHECK (issued_via BETWEEN 1 AND 5),
    revoked_at      BIGINT,
    revoked_reason  TEXT,
    family_id       TEXT,
    parent_id       TEXT,
    last_used_at    BIGINT,
    last_used_ip    TEXT,
    use_count       BIGINT NOT NULL DEFAULT 0,
    label           TEXT,
    client_epoch    BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX tokens_client ON tokens(client_id, expires_at)
    WHERE expires_at - issued_at > 3600 OR length(id) != 24;
CREATE INDEX tokens_family ON tokens(family_id) WHERE family_id IS NOT NULL;
CREATE INDEX tokens_parent ON tokens(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tokens_warnable ON tokens(expires_at)
    WHERE revoked_at IS NULL AND expires_at - issued_at > 3600;

CREATE TABLE authorization_codes (
    token_id                TEXT PRIMARY KEY REFERENCES tokens(id),
    redirect_uri            TEXT NOT NULL,
    redirect_uri_explicit   BIGINT NOT NULL,
    code_challenge          TEXT,
    consumed_at             BIGINT
);

CREATE TABLE users (
    username        TEXT PRIMARY KEY,
    password_hash   TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    updated_at      BIGINT NOT NULL,
    operator        BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX users_username_nocase ON users(lower(username));

CREATE TABLE consents (
    username    TEXT NOT NULL,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    scopes      TEXT NOT NULL,
    granted_at  BIGINT NOT NULL
);
CREATE UNIQUE INDEX consents_key ON consents(lower(username), client_id, scopes);

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE audit_events (
    seq         BIGSERIAL PRIMARY KEY,
    at          BIGINT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    client_id   TEXT,
    token_id    TEXT,
    detail      TEXT
);
CREATE INDEX audit_events_at ON audit_events(at);
CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only';
END $$;
CREATE TRIGGER audit_events_no_change BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_append_only();

CREATE TABLE client_health (
    client_id           TEXT PRIMARY KEY REFERENCES clients(id),
    state               TEXT NOT NULL,
    state_since         BIGINT NOT NULL,
    last_success_at     BIGINT,
    last_success_ip     TEXT,
    last_failure_at     BIGINT,
    last_failure_status BIGINT,
    last_failure_reason TEXT,
    last_token_id       TEXT
);

CREATE TABLE client_activity (
    client_id   TEXT NOT NULL,
    hour        BIGINT NOT NULL,
    ok          BIGINT NOT NULL DEFAULT 0,
    failed      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, hour)
);

CREATE TABLE expiry_warnings (
    subject     TEXT NOT NULL,
    lead        BIGINT NOT NULL,
    fired_at    BIGINT NOT NULL,
    PRIMARY KEY (subject, lead)
);

CREATE TABLE provisioning_errors (
    id           BIGSERIAL PRIMARY KEY,
    client_id    TEXT NOT NULL,
    at           BIGINT NOT NULL,
    method       TEXT NOT NULL,
    resource     TEXT NOT NULL,
    resource_id  TEXT,
    user_name    TEXT,
    external_id  TEXT,
    display_name TEXT,
    status       BIGINT NOT NULL,
    scim_type    TEXT,
    detail       TEXT,
    notified_at  BIGINT
);
CREATE INDEX provisioning_errors_at ON provisioning_errors(at);
CREATE INDEX provisioning_errors_client ON provisioning_errors(client_id, at);
CREATE INDEX provisioning_errors_pending ON provisioning_errors(client_id, id)
    WHERE notified_at IS NULL;

CREATE TABLE scim_resources (
    id                  TEXT PRIMARY KEY,
    resource_type       TEXT NOT NULL,
    user_name           TEXT,
    external_id         TEXT,
    display_name        TEXT,
    doc                 TEXT NOT NULL,
    created_at          TEXT NOT NULL,
    last_modified       TEXT NOT NULL,
    version             BIGINT NOT NULL,
    user_name_fold      TEXT,
    display_name_fold   TEXT
);
CREATE INDEX scim_resources_type ON scim_resources(resource_type, created_at);
CREATE UNIQUE INDEX scim_users_user_name ON scim_resources(lower(user_name))
    WHERE resource_type = 'User';
CREATE INDEX scim_users_user_name_fold ON scim_resources(user_name_fold, created_at, id)
    WHERE resource_type = 'User';
CREATE INDEX scim_resources_external_id ON scim_resources(external_id, created_at, id)
    WHERE external_id IS NOT NULL;
CREATE INDEX scim_resources_display_name ON scim_resources(lower(display_name))
    WHERE display_name IS NOT NULL;
CREATE INDEX scim_resources_display_name_fold
    ON scim_resources(display_name_fold, created_at, id)
    WHERE display_name_fold IS NOT NULL;

CREATE TABLE scim_group_members (
    group_id    TEXT NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_group_members_member ON scim_group_members(member_id);

-- migration: 11
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,
    holder      TEXT NOT NULL,
    until_ms    BIGINT NOT NULL
);
CREATE TABLE web_sessions (
    id_hash     BYTEA PRIMARY KEY,
    csrf        TEXT NOT NULL,
    username    TEXT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);
CREATE TABLE throttle (
    kind            TEXT NOT NULL,
    key             TEXT NOT NULL,
    failures        BIGINT NOT NULL,
    last_failure    BIGINT NOT NULL,
    blocked_until   BIGINT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX throttle_last_failure ON throttle(last_failure);

-- migration: 12

-- As schema.sql's migration 12: one unique index on the folded userName (the lower()
-- unique index and the non-unique fold index before it).
DROP INDEX scim_users_user_name;
DROP INDEX scim_users_user_name_fold;
CREATE UNIQUE INDEX scim_users_user_name_fold ON scim_resources(user_name_fold)
    WHERE resource_type = 'User';

-- migration: 13

-- As schema.sql's migration 13: the form each resource's document is stored in (0 before
-- this version, or rewritten by the store; `store::scim::DOC_FORM` when written through the
-- SCIM service's normaliser).
ALTER TABLE scim_resources ADD COLUMN doc_form BIGINT NOT NULL DEFAULT 0;

-- migration: 14

-- As schema.sql's migration 14: the index on lower(display_name) goes; displayName is
-- compared and sorted by its folded twin only.
DROP INDEX scim_resources_display_name;

-- migration: 15

-- As schema.sql's migration 15: the expiry-warning scan's index carries what the scan tests.
DROP INDEX tokens_warnable;
CREATE INDEX tokens_warnable ON tokens(expires_at, issued_at, revoked_at)
    WHERE revoked_at IS NULL AND expires_at - issued_at > 3600;
