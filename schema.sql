-- scimgate's one schema. Embedded into the binaries with include_str! and applied by
-- src/store/migrate.rs. The store's version is PRAGMA user_version; each "-- migration: N"
-- block below runs once, in order, inside one transaction, for stores older than N.
-- Migrations are forward-only: never edit a block that has shipped, append a new one.
-- Times are Unix seconds (UTC) in INTEGER columns; secrets are SHA-256 hashes in BLOBs.

-- migration: 1

-- Key/value settings that live with the data (the tool password's argon2id hash).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) STRICT;

-- OAuth2 API clients (the IdP apps that provision, and the applications that read).
CREATE TABLE clients (
    id                      TEXT PRIMARY KEY,
    name                    TEXT NOT NULL,
    profile                 TEXT NOT NULL,              -- web | user_agent | native | other
    grants                  TEXT NOT NULL,              -- space-separated grant types
    scopes                  TEXT NOT NULL,              -- space-separated scopes
    redirect_uris           TEXT NOT NULL,              -- JSON array of strings
    auth_method             TEXT NOT NULL,              -- client_secret_basic | client_secret_post | none
    require_consent         INTEGER NOT NULL DEFAULT 0,
    secret_hash             BLOB,                       -- SHA-256 of the sgcs_ secret; NULL for public clients
    secret_expires_at       INTEGER,
    secret_ttl              INTEGER,                    -- seconds a new secret lives; NULL = no expiry
    access_token_ttl        INTEGER NOT NULL,           -- seconds
    refresh_token_ttl       INTEGER NOT NULL,           -- seconds
    idp_kind                TEXT NOT NULL DEFAULT 'custom', -- entra | okta | custom
    idp_app_id              TEXT,
    idp_tenant              TEXT,
    owner_contact           TEXT,
    heartbeat_interval      INTEGER,                    -- seconds; NULL = no heartbeat expected
    missed_heartbeats       INTEGER NOT NULL DEFAULT 3,
    created_at              INTEGER NOT NULL,
    updated_at              INTEGER NOT NULL,
    deleted_at              INTEGER                     -- soft delete: ids are never reused
) STRICT;
CREATE UNIQUE INDEX clients_secret_hash ON clients(secret_hash) WHERE secret_hash IS NOT NULL;

-- Every token ever issued (access, refresh, authorization code), by hash only. Rows are
-- never deleted: revocation sets revoked_at, so `show-token` can always explain a token.
CREATE TABLE tokens (
    id              TEXT PRIMARY KEY,                   -- tok_ + 16 hex of the hash: public
    hash            BLOB NOT NULL UNIQUE,               -- SHA-256 of the token string
    kind            TEXT NOT NULL,                      -- access_token | refresh_token | authorization_code
    client_id       TEXT NOT NULL REFERENCES clients(id),
    subject         TEXT NOT NULL,                      -- user name, or the client id
    scopes          TEXT NOT NULL,                      -- space-separated
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    issued_via      TEXT NOT NULL,                      -- cli | client_credentials | authorization_code | refresh_token | rotate
    family_id       TEXT,                               -- refresh rotation family
    parent_id       TEXT,                               -- the token this one replaced
    last_used_at    INTEGER,
    last_used_ip    TEXT,
    use_count       INTEGER NOT NULL DEFAULT 0,
    label           TEXT
) STRICT;
CREATE INDEX tokens_client ON tokens(client_id, issued_at);
CREATE INDEX tokens_live_expiry ON tokens(expires_at) WHERE revoked_at IS NULL;
CREATE INDEX tokens_family ON tokens(family_id) WHERE family_id IS NOT NULL;

-- Login accounts for the authorization page and the operator pages (argon2id hashes).
CREATE TABLE users (
    username        TEXT PRIMARY KEY COLLATE NOCASE,
    password_hash   TEXT NOT NULL,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
) STRICT;

-- The append-only audit log. The triggers make it so for anything that goes through SQL.
CREATE TABLE audit_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    at          INTEGER NOT NULL,
    actor       TEXT NOT NULL,                          -- cli:<os user>, server, user:<name>, client:<id>
    action      TEXT NOT NULL,                          -- e.g. token.issue, client.register
    outcome     TEXT NOT NULL,                          -- success | failure | denied
    client_id   TEXT,
    token_id    TEXT,
    detail      TEXT                                    -- free text, never a secret
) STRICT;
CREATE INDEX audit_events_at ON audit_events(at);
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END;

-- migration: 2

-- SCIM resources (Users and Groups). `doc` is the resource as JSON with canonical
-- attribute names and without `id`/`meta` (those live in columns); the columns beside it
-- are the attributes filters look up most, indexed.
CREATE TABLE scim_resources (
    id              TEXT PRIMARY KEY,
    resource_type   TEXT NOT NULL,                      -- User | Group
    user_name       TEXT COLLATE NOCASE,                -- Users: userName (caseExact false)
    external_id     TEXT,                               -- caseExact true
    display_name    TEXT COLLATE NOCASE,
    doc             TEXT NOT NULL,
    created_at      TEXT NOT NULL,                      -- RFC 3339, UTC, milliseconds
    last_modified   TEXT NOT NULL,
    version         INTEGER NOT NULL                    -- bumped on every change; the ETag
) STRICT;
CREATE UNIQUE INDEX scim_users_user_name ON scim_resources(user_name)
    WHERE resource_type = 'User';
CREATE INDEX scim_resources_external_id ON scim_resources(external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX scim_resources_display_name ON scim_resources(display_name)
    WHERE display_name IS NOT NULL;
CREATE INDEX scim_resources_type ON scim_resources(resource_type, created_at);

-- Group membership, kept beside the Group documents so a User's `groups` attribute and
-- the clean-up on User deletion are indexed lookups, not document scans.
CREATE TABLE scim_group_members (
    group_id    TEXT NOT NULL REFERENCES scim_resources(id) ON DELETE CASCADE,
    member_id   TEXT NOT NULL,
    PRIMARY KEY (group_id, member_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX scim_group_members_member ON scim_group_members(member_id);

-- migration: 3

-- What an authorization code was issued for, beyond its row in `tokens` (client, user,
-- scopes, 60 s expiry): the redirect URI to match exactly at the token endpoint, the PKCE
-- S256 challenge, and when it was exchanged (a second exchange is a replay, RFC 6749 §4.1.2).
CREATE TABLE authorization_codes (
    token_id                TEXT PRIMARY KEY REFERENCES tokens(id),
    redirect_uri            TEXT NOT NULL,
    redirect_uri_explicit   INTEGER NOT NULL,           -- 1 if the request named it (then the token request must too)
    code_challenge          TEXT,                       -- base64url SHA-256 of the verifier; NULL without PKCE
    consumed_at             INTEGER
) STRICT;

-- Consent an end user gave a client for a set of scopes, remembered so the consent page
-- is shown once (unless the client was registered with --require-end-user-consent).
CREATE TABLE consents (
    username    TEXT NOT NULL COLLATE NOCASE,
    client_id   TEXT NOT NULL REFERENCES clients(id),
    scopes      TEXT NOT NULL,                          -- space-separated, canonical order
    granted_at  INTEGER NOT NULL,
    PRIMARY KEY (username, client_id, scopes)
) STRICT;

-- migration: 4

-- What the monitor knows of each client's provisioning traffic, and its health state.
-- Written by the server's monitor every tick; read by `config status` and the pages.
CREATE TABLE client_health (
    client_id           TEXT PRIMARY KEY REFERENCES clients(id),
    state               TEXT NOT NULL,                  -- idle | healthy | late | missed | failing
    state_since         INTEGER NOT NULL,
    last_success_at     INTEGER,
    last_success_ip     TEXT,
    last_failure_at     INTEGER,
    last_failure_status INTEGER,
    last_failure_reason TEXT,                           -- expired | revoked | forbidden | …
    last_token_id       TEXT                            -- the token of the latest call
) STRICT;

-- Hourly request counts per client, for the timeline page.
CREATE TABLE client_activity (
    client_id   TEXT NOT NULL,
    hour        INTEGER NOT NULL,                       -- Unix seconds, start of the hour
    ok          INTEGER NOT NULL DEFAULT 0,
    failed      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (client_id, hour)
) STRICT, WITHOUT ROWID;

-- Expiry warnings already sent, so a restart neither repeats nor loses one. `subject` is
-- a token id, or `secret:<client id>:<expires_at>` for a client secret.
CREATE TABLE expiry_warnings (
    subject     TEXT NOT NULL,
    lead        INTEGER NOT NULL,                       -- seconds before expiry
    fired_at    INTEGER NOT NULL,
    PRIMARY KEY (subject, lead)
) STRICT, WITHOUT ROWID;

-- migration: 5

-- Tokens are looked up by id (the public selector every token string now carries) and
-- their stored hash compared in constant time, so the UNIQUE index on `hash` goes: it
-- took a write at a random page for every token issued. The table is keyed by id
-- (WITHOUT ROWID): new ids begin with the issue time, so issuing appends at the end of the
-- one remaining tree instead of touching two. Same columns, same rows; rebuilt the way
-- https://sqlite.org/lang_altertable.html describes (foreign keys off, checked after).
CREATE TABLE tokens_v5 (
    id              TEXT PRIMARY KEY,                   -- tok_ + selector (legacy: tok_ + 16 hex of the hash): public
    hash            BLOB NOT NULL,                      -- SHA-256 of the token string
    kind            TEXT NOT NULL,                      -- access_token | refresh_token | authorization_code
    client_id       TEXT NOT NULL REFERENCES clients(id),
    subject         TEXT NOT NULL,                      -- user name, or the client id
    scopes          TEXT NOT NULL,                      -- space-separated
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    issued_via      TEXT NOT NULL,                      -- cli | client_credentials | authorization_code | refresh_token | rotate
    family_id       TEXT,                               -- refresh rotation family
    parent_id       TEXT,                               -- the token this one replaced
    last_used_at    INTEGER,
    last_used_ip    TEXT,
    use_count       INTEGER NOT NULL DEFAULT 0,
    label           TEXT
) STRICT, WITHOUT ROWID;
INSERT INTO tokens_v5 (id, hash, kind, client_id, subject, scopes, issued_at, expires_at,
        revoked_at, revoked_reason, issued_via, family_id, parent_id, last_used_at,
        last_used_ip, use_count, label)
    SELECT id, hash, kind, client_id, subject, scopes, issued_at, expires_at, revoked_at,
        revoked_reason, issued_via, family_id, parent_id, last_used_at, last_used_ip,
        use_count, label
    FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v5 RENAME TO tokens;
CREATE INDEX tokens_client ON tokens(client_id, issued_at);
CREATE INDEX tokens_live_expiry ON tokens(expires_at) WHERE revoked_at IS NULL;
CREATE INDEX tokens_family ON tokens(family_id) WHERE family_id IS NOT NULL;
-- The token that replaced a rotated one (`show-token`'s "Replaced by"), without a scan.
-- Partial: client_credentials tokens have no parent and are never written to it.
CREATE INDEX tokens_parent ON tokens(parent_id) WHERE parent_id IS NOT NULL;
-- Live tokens that live longer than an hour, by expiry: the monitor's expiry-warning scan
-- (warning leads are at least an hour). Partial, so the one-hour OAuth access tokens that
-- make up most rows are neither written to it nor read by the scan. The 3600 is
-- store::tokens::WARNABLE_MIN_LIFETIME, and the scan's query repeats this condition.
CREATE INDEX tokens_warnable ON tokens(expires_at)
    WHERE revoked_at IS NULL AND expires_at - issued_at > 3600;

-- migration: 6

-- Issuing a token writes its row and an entry in every index whose condition it meets;
-- this makes the row smaller and keeps the one-hour access tokens (nearly every row) out
-- of all secondary indexes (bench/RESULTS.md has what each step is worth).
-- 1. The closed vocabularies are stored as small integers, which SQLite keeps in the
--    record header's type byte or one byte (store/tokens.rs names them):
--      kind        1 access_token, 2 refresh_token, 3 authorization_code
--      issued_via  1 cli, 2 client_credentials, 3 authorization_code, 4 refresh_token, 5 rotate
--      scopes      a bit set: 1 user-directory.read.all, 2 user-directory.write.all
--    and `subject` is NULL when it is the client itself (client_credentials and CLI
--    tokens), instead of repeating `client_id`. A token row shrinks from ≈ 190 to ≈ 95 bytes.
-- 2. `tokens_live_expiry` goes, and `tokens_client` (now client_id, expires_at) holds only
--    tokens that live longer than an hour, and legacy tokens (ids of 20 characters, which
--    carry no issue time). A live token living at most an hour was issued within the last
--    hour, and ids begin with the issue time, so those are a range of the primary key
--    (store::tokens::live_tokens). The 3600 is store::tokens::SHORT_LIFETIME; the queries
--    repeat these conditions word for word so that SQLite may use the partial indexes.
CREATE TABLE tokens_v6 (
    id              TEXT PRIMARY KEY,                   -- tok_ + selector (legacy: tok_ + 16 hex of the hash): public
    hash            BLOB NOT NULL,                      -- SHA-256 of the token string
    kind            INTEGER NOT NULL CHECK (kind BETWEEN 1 AND 3),
    client_id       TEXT NOT NULL REFERENCES clients(id),
    subject         TEXT,                               -- user name; NULL: the client itself
    scopes          INTEGER NOT NULL CHECK (scopes BETWEEN 0 AND 3),
    issued_at       INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    issued_via      INTEGER NOT NULL CHECK (issued_via BETWEEN 1 AND 5),
    revoked_at      INTEGER,
    revoked_reason  TEXT,
    family_id       TEXT,                               -- refresh rotation family
    parent_id       TEXT,                               -- the token this one replaced
    last_used_at    INTEGER,
    last_used_ip    TEXT,
    use_count       INTEGER NOT NULL DEFAULT 0,
    label           TEXT
) STRICT, WITHOUT ROWID;
INSERT INTO tokens_v6 (id, hash, kind, client_id, subject, scopes, issued_at, expires_at,
        issued_via, revoked_at, revoked_reason, family_id, parent_id, last_used_at,
        last_used_ip, use_count, label)
    SELECT id, hash,
        CASE kind WHEN 'access_token' THEN 1 WHEN 'refresh_token' THEN 2
            WHEN 'authorization_code' THEN 3 END,
        client_id, nullif(subject, client_id),
        (instr(' ' || scopes || ' ', ' user-directory.read.all ') > 0)
            | ((instr(' ' || scopes || ' ', ' user-directory.write.all ') > 0) << 1),
        issued_at, expires_at,
        CASE issued_via WHEN 'cli' THEN 1 WHEN 'client_credentials' THEN 2
            WHEN 'authorization_code' THEN 3 WHEN 'refresh_token' THEN 4 WHEN 'rotate' THEN 5 END,
        revoked_at, revoked_reason, family_id, parent_id, last_used_at, last_used_ip,
        use_count, label
    FROM tokens;
DROP TABLE tokens;
ALTER TABLE tokens_v6 RENAME TO tokens;
CREATE INDEX tokens_client ON tokens(client_id, expires_at)
    WHERE expires_at - issued_at > 3600 OR length(id) != 24;
CREATE INDEX tokens_family ON tokens(family_id) WHERE family_id IS NOT NULL;
CREATE INDEX tokens_parent ON tokens(parent_id) WHERE parent_id IS NOT NULL;
CREATE INDEX tokens_warnable ON tokens(expires_at)
    WHERE revoked_at IS NULL AND expires_at - issued_at > 3600;

-- migration: 7

-- Cutting a client off (`delete-api-client`, `disable-api-client`, `rotate-client-secret`,
-- `revoke-token --client-id X --all`) is one UPDATE of its row, whatever it holds: the
-- client's `token_epoch` goes up by one, and every token carries the epoch its client had
-- when it was issued, so the tokens issued before the cut (another epoch) are dead. Each
-- cut is a row of `client_cuts`: the token queries (store/tokens.rs) read a token of epoch
-- E as revoked when the cut to E + 1 happened, for its reason. A token is inserted only if
-- its client still has the epoch the request authenticated against, so a token minted on
-- a credential being cut off is refused, not left alive.
ALTER TABLE clients ADD COLUMN token_epoch INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN disabled_at INTEGER;       -- no token is issued while set
ALTER TABLE tokens ADD COLUMN client_epoch INTEGER NOT NULL DEFAULT 0;
CREATE TABLE client_cuts (
    client_id   TEXT NOT NULL REFERENCES clients(id),
    epoch       INTEGER NOT NULL,                       -- the epoch the cut started
    at          INTEGER NOT NULL,
    reason      TEXT NOT NULL,
    PRIMARY KEY (client_id, epoch)
) STRICT, WITHOUT ROWID;

-- Login accounts are for consent (signing in on the authorization page) unless marked
-- `operator`: only operators may open the operator pages (/ui). Accounts that existed
-- before this migration could open them, so they stay operators.
ALTER TABLE users ADD COLUMN operator INTEGER NOT NULL DEFAULT 0;
UPDATE users SET operator = 1;

-- PKCE required of this client at the authorization and token endpoints (RFC 9700
-- §2.1.1 recommends it for confidential clients too). Public clients always need it.
ALTER TABLE clients ADD COLUMN require_pkce INTEGER NOT NULL DEFAULT 0;

-- The email domains a client may provision (`--email-domain`, space-separated rules:
-- `contoso.com` exactly, `*.contoso.com` its subdomains); empty: unrestricted
-- (src/scim/domains.rs).
ALTER TABLE clients ADD COLUMN email_domains TEXT NOT NULL DEFAULT '';

-- migration: 8

-- Provisioning errors: SCIM requests refused with an error the IdP reports against a user
-- or group (400, 409, 412, 413, 415, 5xx; never 401 or 404). Written by the monitor, off
-- the request path; bounded per client (the newest rows are kept, see
-- store/provisioning.rs) and pruned with the other monitor data. Never a request body:
-- only the identifiers of the resource concerned and the SCIM error.
CREATE TABLE provisioning_errors (
    id           INTEGER PRIMARY KEY,
    client_id    TEXT NOT NULL,
    at           INTEGER NOT NULL,                      -- Unix seconds
    method       TEXT NOT NULL,
    resource     TEXT NOT NULL,                         -- Users | Groups | other
    resource_id  TEXT,                                  -- from the path, if any
    user_name    TEXT,                                  -- userName (Users)
    external_id  TEXT,
    display_name TEXT,                                  -- displayName (Groups)
    status       INTEGER NOT NULL,
    scim_type    TEXT,
    detail       TEXT
) STRICT;
CREATE INDEX provisioning_errors_client ON provisioning_errors(client_id, at);
CREATE INDEX provisioning_errors_at ON provisioning_errors(at);

-- migration: 9

-- Provisioning-error digests (monitor/digest.rs): the addresses each client's digest is
-- mailed to (space-separated; `register-api-client --alert-email`), and per error the time
-- a digest naming it was delivered. Errors with `notified_at` NULL are still to be told;
-- a digest that could not be delivered leaves them NULL, so the next one carries them.
ALTER TABLE clients ADD COLUMN alert_emails TEXT NOT NULL DEFAULT '';
ALTER TABLE provisioning_errors ADD COLUMN notified_at INTEGER;
CREATE INDEX provisioning_errors_pending ON provisioning_errors(client_id, id)
    WHERE notified_at IS NULL;

-- migration: 10

-- SCIM strings that are not caseExact compare under Unicode case folding (`ÉLODIE` equals
-- `élodie`) in Rust and in SQL alike (src/scim/value.rs). SQLite's NOCASE folds ASCII
-- only, so the indexed userName and displayName get folded twins, written by the store
-- with every document (src/store/scim.rs) and compared by the filter translator; the
-- userName uniqueness check reads user_name_fold too. `scim_fold` is the Rust fold, which
-- the store registers on its connections; it is used here only to fill the new columns,
-- so no index or trigger depends on it (the sqlite3 shell still checks and writes the
-- file). The fold index is not UNIQUE: a store may already hold two userNames that differ
-- only in non-ASCII case, and the upgrade must not fail on them; the NOCASE unique index
-- stays as the ASCII backstop it always was.
ALTER TABLE scim_resources ADD COLUMN user_name_fold TEXT;
ALTER TABLE scim_resources ADD COLUMN display_name_fold TEXT;
UPDATE scim_resources SET user_name_fold = scim_fold(user_name),
    display_name_fold = scim_fold(display_name);
-- The equality filters IdPs send (userName, externalId, displayName) are answered in the
-- default order (created_at, id) from one index each, the order columns included: without
-- them the planner, told nothing about how selective a non-unique index is, prefers
-- walking scim_resources_type in that order and reads every User (a `userName eq` took
-- 400 ms with 100,000 Users; bench/http.sh's filter_100k).
CREATE INDEX scim_users_user_name_fold ON scim_resources(user_name_fold, created_at, id)
    WHERE resource_type = 'User';
CREATE INDEX scim_resources_display_name_fold
    ON scim_resources(display_name_fold, created_at, id)
    WHERE display_name_fold IS NOT NULL;
DROP INDEX scim_resources_external_id;
CREATE INDEX scim_resources_external_id ON scim_resources(external_id, created_at, id)
    WHERE external_id IS NOT NULL;

-- migration: 11

-- Several server instances on one store (issue 16; on SQLite one host's processes).
-- A lease names the one instance that does a job which must run once: the monitor's ticks
-- (state changes, alerts, expiry warnings, digests). The holder renews it every second;
-- when it stops (killed, hung, cut off), another instance takes it once `until_ms` passed.
-- Times are the database's clock, so hosts with skewed clocks agree.
CREATE TABLE leases (
    name        TEXT PRIMARY KEY,                       -- monitor
    holder      TEXT NOT NULL,                          -- the instance: host, pid, random
    until_ms    INTEGER NOT NULL                        -- Unix milliseconds
) STRICT, WITHOUT ROWID;
-- Signed-in sessions of the authorization and operator pages, so a sign-in on one
-- instance holds on the others (src/web/session.rs). Only the SHA-256 of the session id.
CREATE TABLE web_sessions (
    id_hash     BLOB PRIMARY KEY,
    csrf        TEXT NOT NULL,
    username    TEXT NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);
-- Failed sign-ins, counted per key (an account at an address, an address) for every
-- instance at once (src/throttle.rs): the back-off one instance opens holds on all. Rows
-- are written only for a wrong password (each costs an argon2 verification), and rows of
-- keys with no failure for the longest back-off are deleted at each write.
CREATE TABLE throttle (
    kind            TEXT NOT NULL,                      -- login
    key             TEXT NOT NULL,
    failures        INTEGER NOT NULL,
    last_failure    INTEGER NOT NULL,
    blocked_until   INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX throttle_last_failure ON throttle(last_failure);

-- migration: 12

-- One unique index on the folded userName instead of two indexes on it. The NOCASE unique
-- index saw ASCII case only (the store's check, `check_user_name_free`, compares the
-- Unicode fold), and every create paid for a second random index page in its commit,
-- fsync included (bench/RESULTS.md, "One index on the userName"). Its uniqueness is the
-- fold's now, SCIM's own rule (RFC 7643 §4.1, caseExact false); an equality filter on
-- userName reads it as before. A store holding two Users whose userNames differ only in
-- non-ASCII case (possible before migration 10) is refused before this block runs, with
-- the names to rename (`store::migrate`).
DROP INDEX scim_users_user_name;
DROP INDEX scim_users_user_name_fold;
CREATE UNIQUE INDEX scim_users_user_name_fold ON scim_resources(user_name_fold)
    WHERE resource_type = 'User';

-- migration: 13

-- Which form a resource's document is stored in. 1: written by scimgate from this version
-- on, through the SCIM service's normaliser, so the text is its own default read
-- projection (`store::scim::DOC_FORM`): an answer may be written around it, with `id`,
-- `groups` and `meta` spliced in, instead of parsing, projecting and writing it again
-- (`scim::render`). 0: written before, or rewritten by the store itself (a Group losing a
-- deleted member); such a document is rendered in full. Adding a column with a constant
-- default rewrites no row.
ALTER TABLE scim_resources ADD COLUMN doc_form INTEGER NOT NULL DEFAULT 0;

-- migration: 14

-- The index on `display_name` itself goes. Since migration 10 every query on displayName
-- (an equality, the other operators, `sortBy`) reads its folded twin, indexed by
-- `scim_resources_display_name_fold`, and no statement compares or sorts `display_name`
-- (as migration 12 found for userName). Every create with a displayName (Entra ID and Okta
-- send one for each User; every Group has one) and every rename still wrote an entry into
-- it: a second index page of its commit, fsync and checkpoint included.
DROP INDEX scim_resources_display_name;

-- migration: 15

-- The monitor's expiry-warning scan (store::tokens::to_warn_sql) decides from this index
-- alone which long-lived tokens are inside a warning lead: a token is inside lead L when
-- `expires_at - now <= L` and it lived longer than L (`expires_at - issued_at > L`). With
-- `issued_at` and `revoked_at` in the entries it reads no table row for the tokens no lead
-- applies to, nearly all of those near their expiry (a tick over 1,000,000 tokens read
-- about 40,000 rows for 15 warnings: 58 ms of SQL, against 5 now).
DROP INDEX tokens_warnable;
CREATE INDEX tokens_warnable ON tokens(expires_at, issued_at, revoked_at)
    WHERE revoked_at IS NULL AND expires_at - issued_at > 3600;
