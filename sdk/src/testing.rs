//! Running connector code natively, in unit tests, without a Weir host.
//!
//! A connector's logic (which requests it sends, how it reads responses,
//! what it returns) can be tested with `cargo test` on the build machine:
//! install a [`MockHost`] that answers HTTP requests and signature checks,
//! call the connector's trait methods, then look at the requests it sent and
//! what it logged. Only available on native targets; on wasm32 the real
//! imports are used.
//!
//! # Example
//!
//! ```
//! use weir_sdk::http::{Request, Response};
//! use weir_sdk::testing::MockHost;
//!
//! let host = MockHost::new()
//!     .on_http(|request| {
//!         assert_eq!(request.url(), "https://api.acme.example/v1/ping");
//!         Ok(Response::new(200).with_body("pong"))
//!     })
//!     .install();
//!
//! let response = Request::get("https://api.acme.example/v1/ping").send()?;
//! assert_eq!(response.text()?, "pong");
//! assert_eq!(host.requests().len(), 1);
//! # Ok::<(), weir_sdk::Error>(())
//! ```

use std::cell::RefCell;
use std::marker::PhantomData;

use crate::http::{Request, Response};
use crate::log::Level;
use crate::{Error, Result};

type HttpHandler = Box<dyn FnMut(&Request) -> Result<Response>>;
type VerifyHandler = Box<dyn FnMut(&str, &[u8], &[u8]) -> Result<bool>>;
type SignHandler = Box<dyn FnMut(&str, &[u8]) -> Result<Vec<u8>>>;

/// A stand-in for the Weir host's imports, for native tests.
///
/// Handlers run on the calling thread and must not themselves call
/// `weir_sdk` functions that reach the host.
///
/// # Example
///
/// ```
/// use weir_sdk::testing::MockHost;
///
/// let host = MockHost::new()
///     // A fake HMAC: only this exact signature matches.
///     .on_verify_hmac(|secret, _message, signature| Ok(secret == "webhook_secret" && signature == [7; 32]))
///     .install();
/// assert!(weir_sdk::crypto::verify_hmac_sha256("webhook_secret", b"body", &[7; 32])?);
/// weir_sdk::log::info("checked");
/// assert_eq!(host.logs(), [(weir_sdk::log::Level::Info, "checked".to_string())]);
/// # Ok::<(), weir_sdk::Error>(())
/// ```
#[derive(Default)]
#[must_use = "a mock does nothing until it is installed"]
pub struct MockHost {
    http: Option<HttpHandler>,
    verify_hmac: Option<VerifyHandler>,
    sign_hmac: Option<SignHandler>,
    requests: Vec<Request>,
    logs: Vec<(Level, String)>,
}

impl MockHost {
    /// A mock that answers nothing: every call fails with
    /// [`Error::Unsupported`] until given a handler.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new().install();
    /// assert!(weir_sdk::http::Request::get("https://x.example").send().is_err());
    /// # drop(host);
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// Answers HTTP requests with `handler`. Return `Err` to play a failure
    /// of the host itself (e.g. [`Error::Denied`], a timeout as
    /// [`Error::Transient`]).
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new()
    ///     .on_http(|_| Ok(weir_sdk::http::Response::new(204)))
    ///     .install();
    /// # drop(host);
    /// ```
    pub fn on_http(mut self, handler: impl FnMut(&Request) -> Result<Response> + 'static) -> Self {
        self.http = Some(Box::new(handler));
        self
    }

    /// Answers [`crypto::verify_hmac_sha256`](crate::crypto::verify_hmac_sha256)
    /// with `handler(secret, message, signature)`.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new()
    ///     .on_verify_hmac(|_, _, _| Ok(true))
    ///     .install();
    /// # drop(host);
    /// ```
    pub fn on_verify_hmac(
        mut self,
        handler: impl FnMut(&str, &[u8], &[u8]) -> Result<bool> + 'static,
    ) -> Self {
        self.verify_hmac = Some(Box::new(handler));
        self
    }

    /// Answers [`crypto::sign_hmac_sha256`](crate::crypto::sign_hmac_sha256)
    /// with `handler(secret, message)`.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new()
    ///     .on_sign_hmac(|_, _| Ok(vec![0; 32]))
    ///     .install();
    /// # drop(host);
    /// ```
    pub fn on_sign_hmac(
        mut self,
        handler: impl FnMut(&str, &[u8]) -> Result<Vec<u8>> + 'static,
    ) -> Self {
        self.sign_hmac = Some(Box::new(handler));
        self
    }

    /// Installs the mock on the current thread, replacing any other, until
    /// the returned guard is dropped.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new().install();
    /// assert!(host.requests().is_empty());
    /// ```
    pub fn install(self) -> Installed {
        MOCK.with(|mock| *mock.borrow_mut() = Some(self));
        Installed {
            _not_send: PhantomData,
        }
    }
}

/// An installed [`MockHost`]: shows what the code under test did, and
/// uninstalls the mock when dropped.
///
/// # Example
///
/// ```
/// let host = weir_sdk::testing::MockHost::new().install();
/// weir_sdk::log::warn("careful");
/// assert_eq!(host.logs().len(), 1);
/// ```
#[must_use = "the mock is uninstalled when this is dropped"]
pub struct Installed {
    /// The mock lives in a thread-local: keep the guard on its thread.
    _not_send: PhantomData<*const ()>,
}

impl Installed {
    /// The HTTP requests sent so far, in order.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new().install();
    /// let _ = weir_sdk::http::Request::get("https://x.example").send();
    /// assert_eq!(host.requests()[0].url(), "https://x.example");
    /// ```
    pub fn requests(&self) -> Vec<Request> {
        with_mock(|mock| mock.requests.clone()).unwrap_or_default()
    }

    /// The messages logged so far, in order.
    ///
    /// ```
    /// let host = weir_sdk::testing::MockHost::new().install();
    /// weir_sdk::log::debug("hi");
    /// assert_eq!(host.logs()[0].1, "hi");
    /// ```
    pub fn logs(&self) -> Vec<(Level, String)> {
        with_mock(|mock| mock.logs.clone()).unwrap_or_default()
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        MOCK.with(|mock| mock.borrow_mut().take());
    }
}

thread_local! {
    static MOCK: RefCell<Option<MockHost>> = const { RefCell::new(None) };
}

fn with_mock<R>(f: impl FnOnce(&mut MockHost) -> R) -> Option<R> {
    MOCK.with(|mock| mock.borrow_mut().as_mut().map(f))
}

fn no_host(what: &str) -> Error {
    Error::unsupported(format!(
        "{what} need the Weir host; in native tests, install a `weir_sdk::testing::MockHost`"
    ))
}

fn no_handler(what: &str, method: &str) -> Error {
    Error::unsupported(format!(
        "the installed `MockHost` has no handler for {what}: add `{method}`"
    ))
}

pub(crate) fn http_send(request: Request) -> Result<Response> {
    let method = request.method();
    let url = request.url().to_owned();
    let response = with_mock(|mock| {
        mock.requests.push(request.clone());
        match &mut mock.http {
            Some(handler) => handler(&request),
            None => Err(no_handler("HTTP requests", "MockHost::on_http")),
        }
    })
    .unwrap_or_else(|| Err(no_host("HTTP requests")))?;
    Ok(response.for_request(method, url))
}

pub(crate) fn log(level: Level, message: &str) {
    if with_mock(|mock| mock.logs.push((level, message.to_owned()))).is_none() {
        eprintln!("[{level}] {message}");
    }
}

pub(crate) fn verify_hmac_sha256(secret: &str, message: &[u8], signature: &[u8]) -> Result<bool> {
    with_mock(|mock| match &mut mock.verify_hmac {
        Some(handler) => handler(secret, message, signature),
        None => Err(no_handler("signature checks", "MockHost::on_verify_hmac")),
    })
    .unwrap_or_else(|| Err(no_host("signature checks")))
}

pub(crate) fn sign_hmac_sha256(secret: &str, message: &[u8]) -> Result<Vec<u8>> {
    with_mock(|mock| match &mut mock.sign_hmac {
        Some(handler) => handler(secret, message),
        None => Err(no_handler("signing", "MockHost::on_sign_hmac")),
    })
    .unwrap_or_else(|| Err(no_host("signing")))
}

pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The real check: it needs no secret, so native tests can verify a
/// partner's genuine signatures.
pub(crate) fn verify_ed25519(public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(public_key) = <&[u8; 32]>::try_from(public_key) else {
        return false;
    };
    let Ok(public_key) = ed25519_dalek::VerifyingKey::from_bytes(public_key) else {
        return false;
    };
    let Ok(signature) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    public_key.verify_strict(message, &signature).is_ok()
}
