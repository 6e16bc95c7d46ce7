//! scimgate's integration tests: one binary, one module per feature. They run the real
//! `config` binary on a temporary store and start the real server on a free port.

mod cli_clients;
mod cli_firsthour;
mod cli_misc;
mod cli_prune;
mod cli_tokens;
mod cli_users;
mod concurrency;
mod hostile;
mod monitor;
mod monitor_oauth;
mod oauth;
mod oauth_batch;
mod oauth_endpoints;
mod oauth_pages;
mod oauth_scim;
mod oauth_support;
mod postgres;
mod scim_dialects;
mod scim_domains;
mod scim_guard;
mod scim_resources;
mod scim_values;
mod server;
mod support;
mod timeline;
mod upgrade;
