//! The benchmarks' ceiling (issue 15): a bare actix-web 4 server, built by the benchmark
//! itself, that answers every request — any method, path, body and headers — with a fixed
//! small JSON body, from one worker. Measured with the same wrk scripts, pinning and
//! request as the endpoint it is compared with, so a ratio says what scimgate's own work
//! costs, not what its middleware or logging hide. The body satisfies every script's
//! check (`"access_token"`, `"active":true`).
//!
//! Usage: cargo run --release --example ceiling -- 127.0.0.1:PORT

use actix_web::{App, HttpResponse, HttpServer, web};

const BODY: &str = r#"{"access_token":"sgat_ceiling","active":true,"token_type":"Bearer"}"#;

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8099".into());
    HttpServer::new(|| {
        // The body is read (as scimgate reads a form): an unread body makes actix close
        // the connection instead of keeping it alive, which measures reconnects.
        App::new().default_service(web::to(|_body: web::Bytes| async {
            HttpResponse::Ok()
                .content_type("application/json")
                .body(BODY)
        }))
    })
    .workers(1)
    .bind(addr)?
    .run()
    .await
}
