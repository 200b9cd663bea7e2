//! A `wasi:http` handler as the standard bindings build one: it answers with the method, path
//! and body it was sent, and tries the network when asked (which a command must not reach).

use std::io::{Read as _, Write as _};

use wasip2::http::types::{Fields, IncomingRequest, OutgoingBody, OutgoingResponse, ResponseOutparam};

wasip2::http::proxy::export!(Hello);

struct Hello;

impl wasip2::exports::http::incoming_handler::Guest for Hello {
    fn handle(request: IncomingRequest, response_out: ResponseOutparam) {
        let path = request.path_with_query().unwrap_or_default();
        let header_names: Vec<String> = request.headers().entries().into_iter().map(|(name, _)| name).collect();
        let method = format!("{:?}", request.method());
        let mut body = Vec::new();
        if let Ok(incoming) = request.consume() {
            if let Ok(mut stream) = incoming.stream() {
                let _ = stream.read_to_end(&mut body);
            }
        }
        let (status, text) = if path.starts_with("/outbound") {
            let request = wasip2::http::types::OutgoingRequest::new(Fields::new());
            let _ = request.set_authority(Some("127.0.0.1:9"));
            let _ = request.set_path_with_query(Some("/"));
            let _ = request.set_scheme(Some(&wasip2::http::types::Scheme::Http));
            // The request is refused when its response is awaited, not when it is sent.
            let answer = wasip2::http::outgoing_handler::handle(request, None).map(|future| {
                future.subscribe().block();
                future.get()
            });
            match answer {
                Ok(Some(Ok(Ok(_)))) => (200, "the network was reachable".to_string()),
                other => (502, format!("outgoing request refused: {other:?}")),
            }
        } else if path.starts_with("/headers") {
            (200, header_names.join(","))
        } else {
            (200, format!("{method} {path} {}", String::from_utf8_lossy(&body)))
        };
        let headers = Fields::from_list(&[("content-type".to_string(), b"text/plain".to_vec())]).unwrap();
        let response = OutgoingResponse::new(headers);
        response.set_status_code(status).unwrap();
        let out = response.body().unwrap();
        let mut stream = out.write().unwrap();
        // `/early`: 256 KiB of body written in 4 KiB pieces before the response is set;
        // `/huge`: 8 MiB after it (past the output cap).
        if path.starts_with("/early") {
            for _ in 0..64 {
                stream.write_all(&[b'e'; 4096]).unwrap();
            }
        }
        ResponseOutparam::set(response_out, Ok(response));
        if path.starts_with("/huge") {
            for _ in 0..2048 {
                if stream.write_all(&[b'h'; 4096]).is_err() {
                    break;
                }
            }
        }
        stream.write_all(text.as_bytes()).unwrap();
        stream.flush().unwrap();
        drop(stream);
        OutgoingBody::finish(out, None).unwrap();
    }
}
