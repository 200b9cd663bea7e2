//! A guest's stdout or stderr, captured as before and, for a watched call tree, also handed to
//! its watch as it is written (so a job's followers see output lines live).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamError};

use super::watch::{CallEvent, Watch};
use crate::terminal::strip_control;

/// A capture pipe whose writes are also reported to a call tree's [`Watch`].
#[derive(Clone)]
pub(super) struct LiveOutput {
    /// The capture: what the call's report gets, under the output cap.
    capture: MemoryOutputPipe,
    watch: Arc<Watch>,
    command: String,
    /// `stdout` or `stderr`.
    stream: &'static str,
}

impl LiveOutput {
    /// Reports writes to `capture` as `stream` of `command` to `watch`.
    pub(super) fn new(capture: MemoryOutputPipe, watch: Arc<Watch>, command: &str, stream: &'static str) -> Self {
        LiveOutput { capture, watch, command: command.to_string(), stream }
    }
}

impl OutputStream for LiveOutput {
    fn write(&mut self, bytes: Bytes) -> Result<(), StreamError> {
        // Captured first: a write past the cap traps without being reported.
        self.capture.write(bytes.clone())?;
        let text = strip_control(&String::from_utf8_lossy(&bytes));
        if !text.is_empty() {
            self.watch.emit(CallEvent::Output { command: self.command.clone(), stream: self.stream.into(), text });
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        self.capture.flush()
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        self.capture.check_write()
    }
}

impl Pollable for LiveOutput {
    fn ready<'a, 'b>(&'a mut self) -> Pin<Box<dyn Future<Output = ()> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        // Like the capture pipe, always ready.
        Box::pin(async {})
    }
}

impl IsTerminal for LiveOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for LiveOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASIp2 guests run here; the capture alone serves the async form.
        Box::new(self.capture.clone())
    }
}
