//! HTTP handlers for `/scim/v2`: parse the request (query, headers, bounded JSON body),
//! check the bearer token, call the service on the blocking pool, render the answer.
//! Routes are declared in [`configure`], used by `http::configure`.

use std::borrow::Cow;
use std::sync::Arc;

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use serde_json::{Value, json};

use super::domains::EmailDomains;
use super::error::ScimError;
use super::schema::{ResourceKind, SchemaRegistry, prefix_meta_locations};
use super::service::{
    self, ListParams, PreparedUpdate, Scim, WrittenText, etag, etag_matches, if_match_version,
};
use crate::guard::{Principal, authorize};
use crate::model::Scope;
use crate::monitor::events::Concerned;
use crate::state::{AppState, SEARCHES_PER_CLIENT};
use crate::store::{CHANGE_IN_WRITER_BYTES, ScimChange};
use crate::sync::Refused;

/// The SCIM media type (RFC 7644 §3.1).
pub const SCIM_JSON: &str = "application/scim+json";
/// [`SCIM_JSON`] as a header value, checked once at compile time (a `&str` header is
/// checked and copied on every response).
pub(crate) const SCIM_JSON_VALUE: header::HeaderValue = header::HeaderValue::from_static(SCIM_JSON);

/// Register the SCIM routes under the current scope (`/scim/v2`).
pub fn configure(cfg: &mut web::ServiceConfig) {
    for kind in ResourceKind::ALL {
        // A scope per endpoint, matched by its static prefix; `{ep}/{id}` is its default
        // service (`one`), not a `{id}` pattern, which actix matches with a regex.
        cfg.service(
            web::scope(kind.endpoint())
                .service(
                    web::resource("/.search")
                        .route(web::post().to(move |r, s, b| search(r, s, b, Some(kind))))
                        .default_service(web::to(|| method_not_allowed("POST"))),
                )
                .service(
                    web::resource("")
                        .route(web::get().to(move |r, s| list(r, s, kind)))
                        .route(web::post().to(move |r, s, b| create(r, s, b, kind)))
                        .default_service(web::to(|| method_not_allowed("GET, POST"))),
                )
                .default_service(web::to(move |r, s, b| one(r, s, b, kind))),
        );
    }
    cfg.service(
        web::resource("/.search")
            .route(web::post().to(|r, s, b| search(r, s, b, None)))
            .default_service(web::to(|| method_not_allowed("POST"))),
    )
    .service(
        web::resource("/ServiceProviderConfig")
            .route(web::get().to(service_provider_config))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource("/ResourceTypes")
            .route(web::get().to(resource_types))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource("/ResourceTypes/{id}")
            .route(web::get().to(resource_type))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource("/Schemas")
            .route(web::get().to(schemas))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .service(
        web::resource("/Schemas/{id}")
            .route(web::get().to(schema))
            .default_service(web::to(|| method_not_allowed("GET"))),
    )
    .default_service(web::to(not_found));
}

fn base_url(state: &AppState) -> &str {
    &state.scim_base_url
}

fn scim_response(status: actix_web::http::StatusCode, body: &Value) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((header::CONTENT_TYPE, SCIM_JSON_VALUE))
        .body(crate::scim::json::to_text(body))
}

/// A written resource's answer: its ETag, and a create's `Location`.
fn resource_response(status: actix_web::http::StatusCode, w: WrittenText) -> HttpResponse {
    let mut r = HttpResponse::build(status);
    r.insert_header((header::CONTENT_TYPE, SCIM_JSON_VALUE))
        .insert_header((header::ETAG, etag(w.version)));
    if status == actix_web::http::StatusCode::CREATED && !w.location.is_empty() {
        r.insert_header((header::LOCATION, w.location));
    }
    r.body(w.json)
}

/// A resource rendered as a `Value` (the writes outside the group commit), as text.
fn written_value((doc, version): (Value, i64)) -> WrittenText {
    let location = doc
        .pointer("/meta/location")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    WrittenText {
        json: crate::scim::json::to_text(&doc),
        version,
        location,
    }
}

/// 405 with the SCIM error body and the `Allow` header RFC 9110 asks for.
async fn method_not_allowed(allow: &'static str) -> HttpResponse {
    let mut resp = actix_web::ResponseError::error_response(&ScimError::new(
        405,
        None,
        format!("this method is not supported on this endpoint; use {allow}"),
    ));
    resp.headers_mut()
        .insert(header::ALLOW, header::HeaderValue::from_static(allow));
    resp
}

/// `{endpoint}/{id}`, one resource: GET, PUT, PATCH, DELETE. Routed here by hand: the
/// pattern `{id}` made actix run a regex on every request, the largest part of a GET's
/// routing (bench/RESULTS.md). The id is one path segment, percent-decoded as actix's
/// `Path` extractor decodes it (every escape, invalid UTF-8 replaced); anything else
/// below the endpoint is a 404.
async fn one(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    kind: ResourceKind,
) -> Result<HttpResponse, ScimError> {
    let segment = req
        .match_info()
        .unprocessed()
        .strip_prefix('/')
        .filter(|s| !s.is_empty() && !s.contains('/'));
    let Some(segment) = segment else {
        return Ok(not_found(req).await);
    };
    // An id with no escape (every id this server makes) is the segment itself.
    let id = if segment.contains('%') {
        percent_encoding::percent_decode_str(segment)
            .decode_utf8_lossy()
            .into_owned()
    } else {
        segment.to_owned()
    };
    match *req.method() {
        actix_web::http::Method::GET => get(req, state, id, kind).await,
        actix_web::http::Method::PUT => {
            update(req, state, id, payload, kind, Update::Replace).await
        }
        actix_web::http::Method::PATCH => {
            update(req, state, id, payload, kind, Update::Patch).await
        }
        actix_web::http::Method::DELETE => delete(req, state, id, kind).await,
        _ => Ok(method_not_allowed("GET, PUT, PATCH, DELETE").await),
    }
}

async fn not_found(req: HttpRequest) -> HttpResponse {
    actix_web::ResponseError::error_response(&ScimError::not_found(format!(
        "no SCIM endpoint at {}",
        req.path()
    )))
}

/// Read a JSON body of at most the configured size.
async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<Value, ScimError> {
    Ok(read_json_sized(req, payload, limit).await?.0)
}

/// [`read_json`], and the body's length in bytes.
async fn read_json_sized(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
) -> Result<(Value, usize), ScimError> {
    let body = crate::body::read(req, payload, limit)
        .await
        .map_err(|e| match e {
            crate::body::BodyError::TooLarge(_) => ScimError::new(413, None, e.to_string()),
            e => ScimError::bad_request("invalidSyntax", e.to_string()),
        })?;
    if body.is_empty() {
        return Err(ScimError::bad_request(
            "invalidSyntax",
            "the request has no JSON body",
        ));
    }
    let value = super::json::from_slice_strict(&body).map_err(|e| {
        ScimError::bad_request("invalidSyntax", format!("the body is not valid JSON: {e}"))
    })?;
    Ok((value, body.len()))
}

/// Authorize the request for `scope` and return the calling client's email domains
/// (`scim::domains`; `None`: unrestricted).
fn authorize_for(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
) -> Result<Option<EmailDomains>, ScimError> {
    Ok(authorize_client(req, state, scope)?.1)
}

/// [`authorize_for`], and who is calling.
fn authorize_client(
    req: &HttpRequest,
    state: &AppState,
    scope: Scope,
) -> Result<(Principal, Option<EmailDomains>), ScimError> {
    let principal = authorize(req, state, scope)?;
    let client = state
        .oauth
        .cached_client(principal.client_id())
        .map_err(|e| {
            tracing::error!(error = %e, "client lookup failed");
            ScimError::internal()
        })?;
    let domains = client.and_then(|c| EmailDomains::from_rules(&c.email_domains));
    Ok((principal, domains))
}

/// Run a list or search that may scan: on the blocking pool, when `client` has its turn
/// (`AppState::search_gate`: a few at once, a few per client; a client with too many
/// gets 429, and when too many wait, 503, each with `Retry-After`).
async fn search_with_turn<T: Send + 'static>(
    state: &web::Data<AppState>,
    client: &str,
    domains: Option<EmailDomains>,
    f: impl FnOnce(&Scim<'_>) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let turn = state
        .search_gate
        .turn(Some(client))
        .await
        .map_err(|refused| match refused {
            Refused::Yours => ScimError::new(
                429,
                None,
                format!(
                    "this client already has {SEARCHES_PER_CLIENT} lists or searches running or \
                     waiting: wait for their answers before sending more"
                ),
            ),
            Refused::Full => ScimError::new(
                503,
                None,
                "the server has too many lists and searches waiting; try again in a second",
            ),
        })?;
    with_scim(state, domains, move |s| {
        let _turn = turn;
        f(s)
    })
    .await
}

/// Run `f` with the service on this worker thread: for point reads by primary key, which
/// take microseconds (WAL readers never wait for writers), less than a hop to the blocking
/// pool costs. Anything that scans or writes goes through [`with_scim`].
fn with_scim_inline<T>(
    state: &AppState,
    domains: Option<EmailDomains>,
    f: impl FnOnce(&Scim<'_>) -> Result<T, ScimError>,
) -> Result<T, ScimError> {
    let scim = Scim {
        store: &state.store,
        registry: SchemaRegistry::builtin(),
        base_url: base_url(state),
        clock: &state.clock,
        cache: &state.scim_cache,
        domains,
    };
    f(&scim)
}

/// Run `f` with the service on the blocking pool.
async fn with_scim<T: Send + 'static>(
    state: &web::Data<AppState>,
    domains: Option<EmailDomains>,
    f: impl FnOnce(&Scim<'_>) -> Result<T, ScimError> + Send + 'static,
) -> Result<T, ScimError> {
    let state = state.clone();
    web::block(move || {
        let scim = Scim {
            store: &state.store,
            registry: SchemaRegistry::builtin(),
            base_url: base_url(&state),
            clock: &state.clock,
            cache: &state.scim_cache,
            domains,
        };
        f(&scim)
    })
    .await
    .map_err(|_| ScimError::internal())?
}

/// The list parameters of a query string (RFC 7644 §3.4.2), their names compared without
/// case, percent-decoded (invalid UTF-8 replaced, as any form decoder does); a repeated one
/// keeps its last value, and any other parameter is ignored. Borrowed from the query string
/// where nothing needed decoding: an IdP's lookup sends one parameter before every create.
#[derive(Default)]
struct Query<'q> {
    filter: Option<Cow<'q, str>>,
    sort_by: Option<Cow<'q, str>>,
    sort_order: Option<Cow<'q, str>>,
    start_index: Option<Cow<'q, str>>,
    count: Option<Cow<'q, str>>,
    attributes: Option<Cow<'q, str>>,
    excluded: Option<Cow<'q, str>>,
}

impl<'q> Query<'q> {
    fn parse(text: &'q str) -> Query<'q> {
        let mut q = Query::default();
        for (name, value) in url::form_urlencoded::parse(text.as_bytes()) {
            let slot = [
                ("filter", &mut q.filter),
                ("sortBy", &mut q.sort_by),
                ("sortOrder", &mut q.sort_order),
                ("startIndex", &mut q.start_index),
                ("count", &mut q.count),
                ("attributes", &mut q.attributes),
                ("excludedAttributes", &mut q.excluded),
            ]
            .into_iter()
            .find(|(known, _)| known.eq_ignore_ascii_case(&name));
            if let Some((_, slot)) = slot {
                *slot = Some(value);
            }
        }
        q
    }

    /// A number parameter, checked as the SearchRequest body's are.
    fn number(name: &str, value: Option<&Cow<'q, str>>) -> Result<Option<i64>, ScimError> {
        number(name, value.map(|v| Value::String(v.to_string())).as_ref())
    }
}

fn split_list(s: Option<&str>) -> Vec<String> {
    s.map(|s| {
        s.split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect()
    })
    .unwrap_or_default()
}

fn number(name: &str, v: Option<&Value>) -> Result<Option<i64>, ScimError> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => n.as_i64().map(Some).ok_or_else(|| {
            ScimError::bad_request("invalidValue", format!("{name} must be an integer"))
        }),
        Some(Value::String(s)) => s.trim().parse::<i64>().map(Some).map_err(|_| {
            ScimError::bad_request(
                "invalidValue",
                format!("{name} must be an integer, not `{s}`"),
            )
        }),
        Some(_) => Err(ScimError::bad_request(
            "invalidValue",
            format!("{name} must be an integer"),
        )),
    }
}

fn list_params(
    filter: Option<&str>,
    sort_by: Option<String>,
    sort_order: Option<&str>,
    start_index: Option<i64>,
    count: Option<i64>,
    attributes: Vec<String>,
    excluded: Vec<String>,
) -> Result<ListParams, ScimError> {
    let descending = match sort_order.map(str::to_ascii_lowercase).as_deref() {
        None | Some("ascending") => false,
        Some("descending") => true,
        Some(other) => {
            return Err(ScimError::bad_request(
                "invalidValue",
                format!("sortOrder must be ascending or descending, not `{other}`"),
            ));
        }
    };
    Ok(ListParams {
        filter: ListParams::filter_param(filter)?,
        sort_by,
        descending,
        start_index: usize::try_from(start_index.unwrap_or(1).max(1)).unwrap_or(1),
        count: count.map(|c| usize::try_from(c.max(0)).unwrap_or(0)),
        attributes,
        excluded,
    })
}

fn projection(req: &HttpRequest) -> Result<(Vec<String>, Vec<String>), ScimError> {
    if req.query_string().is_empty() {
        return Ok((Vec::new(), Vec::new()));
    }
    let q = Query::parse(req.query_string());
    Ok((
        split_list(q.attributes.as_deref()),
        split_list(q.excluded.as_deref()),
    ))
}

async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    kind: ResourceKind,
) -> Result<HttpResponse, ScimError> {
    let (client, domains) = authorize_client(&req, &state, Scope::DirectoryRead)?;
    let q = Query::parse(req.query_string());
    let params = list_params(
        q.filter.as_deref(),
        q.sort_by.map(Cow::into_owned),
        q.sort_order.as_deref(),
        Query::number("startIndex", q.start_index.as_ref())?,
        Query::number("count", q.count.as_ref())?,
        split_list(q.attributes.as_deref()),
        split_list(q.excluded.as_deref()),
    )?;
    // IdPs look a user up by userName or externalId before every create: one index entry,
    // answered here like a GET by id; anything that may scan goes to the blocking pool.
    if let Some(point) = params.point_lookup(kind) {
        let text = with_scim_inline(&state, domains, |s| s.list_point(kind, &params, &point))?;
        return Ok(HttpResponse::Ok()
            .insert_header((header::CONTENT_TYPE, SCIM_JSON_VALUE))
            .body(text));
    }
    let body = search_with_turn(&state, client.client_id(), domains, move |s| {
        s.list(&[kind], &params)
    })
    .await?;
    Ok(scim_response(actix_web::http::StatusCode::OK, &body))
}

async fn search(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    kind: Option<ResourceKind>,
) -> Result<HttpResponse, ScimError> {
    let (client, domains) = authorize_client(&req, &state, Scope::DirectoryRead)?;
    let body = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let obj = body.as_object().ok_or_else(|| {
        ScimError::bad_request("invalidSyntax", "a SearchRequest must be a JSON object")
    })?;
    let field = |name: &str| {
        obj.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    };
    let string = |name: &str| -> Result<Option<String>, ScimError> {
        match field(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(ScimError::bad_request(
                "invalidValue",
                format!("{name} must be a string"),
            )),
        }
    };
    let strings = |name: &str| -> Result<Vec<String>, ScimError> {
        match field(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(split_list(Some(s))),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        ScimError::bad_request("invalidValue", format!("{name} must hold strings"))
                    })
                })
                .collect(),
            Some(_) => Err(ScimError::bad_request(
                "invalidValue",
                format!("{name} must be an array"),
            )),
        }
    };
    let params = list_params(
        string("filter")?.as_deref(),
        string("sortBy")?,
        string("sortOrder")?.as_deref(),
        number("startIndex", field("startIndex"))?,
        number("count", field("count"))?,
        strings("attributes")?,
        strings("excludedAttributes")?,
    )?;
    let kinds: Vec<ResourceKind> = match kind {
        Some(k) => vec![k],
        None => ResourceKind::ALL.to_vec(),
    };
    let body = search_with_turn(&state, client.client_id(), domains, move |s| {
        s.list(&kinds, &params)
    })
    .await?;
    Ok(scim_response(actix_web::http::StatusCode::OK, &body))
}

async fn create(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
    kind: ResourceKind,
) -> Result<HttpResponse, ScimError> {
    let domains = authorize_for(&req, &state, Scope::DirectoryWrite)?;
    let body = read_json(&req, payload, state.settings.max_body_bytes).await?;
    let concerned = Concerned::of(&body);
    let created = if kind == ResourceKind::User {
        // Checked and rendered here (no store access for a User), inserted in the group
        // commit: one transaction and one fsync for the creates of a whole turn of the
        // event loop, and no hop to the blocking pool per request.
        match with_scim_inline(&state, domains.clone(), |s| s.prepare_create(kind, &body)) {
            Ok(new) => {
                let result = state
                    .oauth
                    .token_batcher
                    .insert_scim(kind.name(), new.id.clone(), new.doc, new.now)
                    .await;
                with_scim_inline(&state, domains, |s| s.written_text(kind, &new.id, result))
            }
            Err(e) => Err(e),
        }
    } else {
        with_scim(&state, domains, move |s| s.create(kind, &body))
            .await
            .map(written_value)
    };
    let written = created.inspect_err(|_| concerned.note(&req))?;
    Ok(resource_response(
        actix_web::http::StatusCode::CREATED,
        written,
    ))
}

async fn get(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    kind: ResourceKind,
) -> Result<HttpResponse, ScimError> {
    let domains = authorize_for(&req, &state, Scope::DirectoryRead)?;
    let (attributes, excluded) = projection(&req)?;
    let found = with_scim_inline(&state, domains, |s| {
        s.get(kind, &id, &attributes, &excluded)
    })?;
    let version = found.version;
    if let Some(h) = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|h| h.to_str().ok())
    {
        if etag_matches(h, version) {
            return Ok(HttpResponse::NotModified()
                .insert_header((header::ETAG, etag(version)))
                .finish());
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, SCIM_JSON_VALUE))
        .insert_header((header::ETAG, etag(version)))
        .body(found.json))
}

fn if_match(req: &HttpRequest) -> Result<Option<Vec<i64>>, ScimError> {
    if_match_version(
        req.headers()
            .get(header::IF_MATCH)
            .and_then(|h| h.to_str().ok()),
    )
}

/// PUT or PATCH: the same request shape, a different service operation.
#[derive(Clone, Copy)]
enum Update {
    Replace,
    Patch,
}

impl Update {
    /// The change request `body` asks of a `kind` (a PATCH's operations parsed).
    fn of(self, kind: ResourceKind, body: &Value) -> Result<service::Update<'_>, ScimError> {
        match self {
            Update::Replace => Ok(service::Update::Replace(body)),
            Update::Patch => service::Update::patch(kind, body),
        }
    }
}

async fn update(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    payload: web::Payload,
    kind: ResourceKind,
    how: Update,
) -> Result<HttpResponse, ScimError> {
    let domains = authorize_for(&req, &state, Scope::DirectoryWrite)?;
    let expected = if_match(&req)?;
    let (body, length) = read_json_sized(&req, payload, state.settings.max_body_bytes).await?;
    let concerned = Concerned::of(&body);
    let small = length <= CHANGE_IN_WRITER_BYTES;
    let updated = update_in_batch(&state, domains, kind, id, body, small, how, expected).await;
    let written = updated.inspect_err(|_| concerned.note(&req))?;
    Ok(resource_response(actix_web::http::StatusCode::OK, written))
}

/// How often an update is prepared again when another write changed the resource
/// between the read and the write, before it is done the slow way: read and written in
/// one transaction of its own on the blocking pool, where no other write can come between.
const UPDATE_ATTEMPTS: usize = 3;

/// A User's PATCH of at most this many operations is prepared on the worker thread (a
/// microsecond or so an operation on a usual User); more go to the blocking pool.
const INLINE_PATCH_OPERATIONS: usize = 16;

/// PUT or PATCH through the group commit.
///
/// A usual User's (a request of at most [`CHANGE_IN_WRITER_BYTES`], a PATCH of at most
/// [`INLINE_PATCH_OPERATIONS`] operations) is read, changed, checked and written inside
/// the batch's transaction ([`change_in_writer`]), unless the batcher declines it.
///
/// Otherwise the new document is prepared from a read, outside the write lock, and
/// written in the next batch only if the resource is still at the version read. Only the
/// write holds the lock: a one-member PATCH of a Group of 49,000 members, read, patched
/// and checked inside it, held every token request behind it for 0.15–0.4 s. A User's is
/// prepared on the worker thread; a Group's (its member list may be long) and a PATCH of
/// many operations on the blocking pool, so that they do not hold up the other requests
/// of this worker.
#[allow(clippy::too_many_arguments)]
async fn update_in_batch(
    state: &web::Data<AppState>,
    domains: Option<EmailDomains>,
    kind: ResourceKind,
    id: String,
    body: Value,
    small: bool,
    how: Update,
    expected: Option<Vec<i64>>,
) -> Result<WrittenText, ScimError> {
    // Shared with the blocking pool's closures, not copied (a PUT's body may be 1 MiB).
    let request = Arc::new((id, body, expected));
    if kind == ResourceKind::User && small {
        let patch = match how {
            Update::Patch => Some(service::Update::patch(kind, &request.1)?),
            Update::Replace => None,
        };
        let few = patch.as_ref().is_none_or(|p| match p {
            service::Update::Patch { ops, .. } => ops.len() <= INLINE_PATCH_OPERATIONS,
            service::Update::Replace(_) => true,
        });
        if few {
            let changed = change_in_writer(state, domains.clone(), kind, request.clone(), patch);
            if let Some(written) = changed.await? {
                return Ok(written);
            }
        }
    }
    let (id, body, expected) = &*request;
    // The change, when it is prepared here on the worker.
    let inline = match kind {
        ResourceKind::User => Some(how.of(kind, body)?).filter(|c| match c {
            service::Update::Patch { ops, .. } => ops.len() <= INLINE_PATCH_OPERATIONS,
            service::Update::Replace(_) => true,
        }),
        ResourceKind::Group => None,
    };
    for _ in 0..UPDATE_ATTEMPTS {
        let prepared = match &inline {
            Some(change) => with_scim_inline(state, domains.clone(), |s| {
                s.prepare_update(kind, id, change, expected.as_deref())
            })?,
            None => {
                let request = request.clone();
                with_scim(state, domains.clone(), move |s| {
                    let (id, body, expected) = &*request;
                    s.prepare_update(kind, id, &how.of(kind, body)?, expected.as_deref())
                })
                .await?
            }
        };
        let result = match prepared {
            PreparedUpdate::Unchanged(rec) => Ok((rec, None)),
            PreparedUpdate::Write { version, doc, now } => {
                let written = state
                    .oauth
                    .token_batcher
                    .replace_scim(kind.name(), id.clone(), version, doc, now)
                    .await;
                match written {
                    Ok(Some(rec)) => Ok(rec),
                    Ok(None) => continue,
                    Err(e) => Err(e),
                }
            }
        };
        return if inline.is_some() {
            with_scim_inline(state, domains, |s| s.written_text(kind, id, result))
        } else {
            let id = id.clone();
            with_scim(state, domains, move |s| s.written_text(kind, &id, result)).await
        };
    }
    let request = request.clone();
    with_scim(state, domains, move |s| {
        let (id, body, expected) = &*request;
        match how {
            Update::Replace => s.replace(kind, id, body, expected.as_deref()),
            Update::Patch => s.patch(kind, id, body, expected.as_deref()),
        }
    })
    .await
    .map(written_value)
}

/// A User's PUT (`patch` None) or PATCH made inside the group commit's transaction
/// ([`crate::store::TokenBatcher::change_scim`]): the answer, or `None` when the batcher
/// declined it (nothing read or written; the caller prepares it outside).
async fn change_in_writer(
    state: &web::Data<AppState>,
    domains: Option<EmailDomains>,
    kind: ResourceKind,
    request: Arc<(String, Value, Option<Vec<i64>>)>,
    patch: Option<service::Update<'static>>,
) -> Result<Option<WrittenText>, ScimError> {
    let now = with_scim_inline(state, None, |s| Ok(s.write_time()))?;
    let id = request.0.clone();
    let (writer_state, writer_domains) = (state.clone(), domains.clone());
    let changed = state
        .oauth
        .token_batcher
        .change_scim(kind.name(), id.clone(), now, move |current| {
            let (_, body, expected) = &*request;
            let replace = service::Update::Replace(body);
            let change = patch.as_ref().unwrap_or(&replace);
            with_scim_inline(&writer_state, writer_domains, |s| {
                s.change_of(kind, current, change, expected.as_deref())
            })
        })
        .await;
    let result = match changed {
        Ok(ScimChange::Declined) => return Ok(None),
        Ok(ScimChange::Missing) => return Err(service::missing(kind, &id)),
        Ok(ScimChange::Refused(e)) => return Err(e),
        Ok(ScimChange::Unchanged(current)) => Ok((current, None)),
        Ok(ScimChange::Written(record, text)) => Ok((record, Some(text))),
        Err(e) => Err(e),
    };
    with_scim_inline(state, domains, |s| s.written_text(kind, &id, result)).map(Some)
}

async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    id: String,
    kind: ResourceKind,
) -> Result<HttpResponse, ScimError> {
    let domains = authorize_for(&req, &state, Scope::DirectoryWrite)?;
    let expected = if_match(&req)?;
    with_scim(&state, domains, move |s| {
        s.delete(kind, &id, expected.as_deref())
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

fn list_response(mut items: Value, base: &str) -> Value {
    prefix_meta_locations(&mut items, base);
    let items = match items {
        Value::Array(a) => a,
        other => vec![other],
    };
    json!({
        "schemas": [super::service::LIST_SCHEMA],
        "totalResults": items.len(),
        "startIndex": 1,
        "itemsPerPage": items.len(),
        "Resources": items,
    })
}

async fn service_provider_config(state: web::Data<AppState>) -> HttpResponse {
    let mut v = SchemaRegistry::builtin().service_provider_config_json();
    prefix_meta_locations(&mut v, base_url(&state));
    scim_response(actix_web::http::StatusCode::OK, &v)
}

async fn resource_types(state: web::Data<AppState>) -> HttpResponse {
    let v = SchemaRegistry::builtin().resource_types_json();
    scim_response(
        actix_web::http::StatusCode::OK,
        &list_response(v, base_url(&state)),
    )
}

async fn resource_type(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = path.into_inner();
    let mut v = SchemaRegistry::builtin()
        .resource_type_by_id(&id)
        .ok_or_else(|| ScimError::not_found(format!("no resource type {id}")))?;
    prefix_meta_locations(&mut v, base_url(&state));
    Ok(scim_response(actix_web::http::StatusCode::OK, &v))
}

async fn schemas(state: web::Data<AppState>) -> HttpResponse {
    let v = SchemaRegistry::builtin().schemas_json();
    scim_response(
        actix_web::http::StatusCode::OK,
        &list_response(v, base_url(&state)),
    )
}

async fn schema(
    state: web::Data<AppState>,
    path: web::Path<String>,
) -> Result<HttpResponse, ScimError> {
    let id = path.into_inner();
    let mut v = SchemaRegistry::builtin()
        .schema_by_id(&id)
        .ok_or_else(|| ScimError::not_found(format!("no schema {id}")))?;
    prefix_meta_locations(&mut v, base_url(&state));
    Ok(scim_response(actix_web::http::StatusCode::OK, &v))
}
