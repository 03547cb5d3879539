//! ipckit from Rust through the C API (include/ipckit/ipckit.h), with plain `extern "C"`
//! declarations and no crates: a message from the `ipckit` tool to Rust over shm:, and one
//! from Rust to the tool. Build and run (docs/c-api.md):
//!
//!     rustc --edition 2021 -O examples/rust/roundtrip.rs -o roundtrip \
//!         $(pkg-config --libs ipckit-c | sed 's/-L/-L native=/g')
//!     ./roundtrip /usr/bin/ipckit
use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int, c_void};
use std::process::{Command, Stdio};

#[repr(C)]
pub struct IpckitSender {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct IpckitReceiver {
    _opaque: [u8; 0],
}
#[repr(C)]
pub struct IpckitSenderCloseInfo {
    stored: usize,
    undelivered: c_int,
}

// ipckit_status values (ipckit.h).
const IPCKIT_OK: c_int = 0;
const IPCKIT_CLOSED: c_int = 3;
const IPCKIT_FOREVER: i64 = -1;
const SECOND: i64 = 1_000_000_000;

extern "C" {
    fn ipckit_last_error() -> *const c_char;
    fn ipckit_status_name(status: c_int) -> *const c_char;
    fn ipckit_receiver_create(address: *const c_char, receiver: *mut *mut IpckitReceiver) -> c_int;
    fn ipckit_receiver_recv(
        receiver: *mut IpckitReceiver,
        buffer: *mut c_void,
        capacity: usize,
        size: *mut usize,
        timeout_ns: i64,
    ) -> c_int;
    fn ipckit_receiver_close(receiver: *mut IpckitReceiver);
    fn ipckit_sender_open(address: *const c_char, timeout_ns: i64, sender: *mut *mut IpckitSender) -> c_int;
    fn ipckit_sender_send(sender: *mut IpckitSender, data: *const c_void, size: usize, timeout_ns: i64) -> c_int;
    fn ipckit_sender_close(sender: *mut IpckitSender, info: *mut IpckitSenderCloseInfo) -> c_int;
}

/// Turns a status into a Result whose error names the call and the object (ipckit_last_error).
fn check(status: c_int, wanted: c_int, what: &str) -> Result<(), String> {
    if status == wanted {
        return Ok(());
    }
    let (name, text) = unsafe {
        (
            CStr::from_ptr(ipckit_status_name(status)).to_string_lossy().into_owned(),
            CStr::from_ptr(ipckit_last_error()).to_string_lossy().into_owned(),
        )
    };
    Err(format!("{}: {} ({})", what, name, text))
}

/// A receiver that closes (and so removes what it created) when dropped.
struct Receiver(*mut IpckitReceiver);

impl Receiver {
    fn create(address: &str) -> Result<Receiver, String> {
        let address = CString::new(address).map_err(|e| e.to_string())?;
        let mut handle = std::ptr::null_mut();
        check(unsafe { ipckit_receiver_create(address.as_ptr(), &mut handle) }, IPCKIT_OK, "ipckit_receiver_create")?;
        Ok(Receiver(handle))
    }

    /// The next message, or None once the sender closed.
    fn recv(&mut self, timeout_ns: i64) -> Result<Option<Vec<u8>>, String> {
        let mut buffer = vec![0u8; 4096];
        let mut size = 0usize;
        let status = unsafe {
            ipckit_receiver_recv(self.0, buffer.as_mut_ptr().cast(), buffer.len(), &mut size, timeout_ns)
        };
        if status == IPCKIT_CLOSED {
            return Ok(None);
        }
        check(status, IPCKIT_OK, "ipckit_receiver_recv")?;
        buffer.truncate(size);
        Ok(Some(buffer))
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        unsafe { ipckit_receiver_close(self.0) }
    }
}

fn tool_to_rust(tool: &str, address: &str) -> Result<(), String> {
    let mut rx = Receiver::create(address)?;
    let mut child = Command::new(tool).args(["send", address, "hello from the tool"]).spawn().map_err(|e| e.to_string())?;
    let message = rx.recv(20 * SECOND)?.ok_or("the tool closed before sending")?;
    if message != b"hello from the tool" {
        return Err(format!("got {:?}", String::from_utf8_lossy(&message)));
    }
    if rx.recv(20 * SECOND)?.is_some() {
        return Err("a second message arrived".into());
    }
    let status = child.wait().map_err(|e| e.to_string())?;
    if !status.success() {
        return Err(format!("ipckit send: {}", status));
    }
    println!("rust: ipckit send {} -> Rust: ok", address);
    Ok(())
}

fn rust_to_tool(tool: &str, address: &str) -> Result<(), String> {
    let child = Command::new(tool)
        .args(["recv", address, "--count", "1", "--timeout", "20"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    let c_address = CString::new(address).map_err(|e| e.to_string())?;
    let mut tx = std::ptr::null_mut();
    check(unsafe { ipckit_sender_open(c_address.as_ptr(), 20 * SECOND, &mut tx) }, IPCKIT_OK, "ipckit_sender_open")?;
    let message = b"hello from Rust";
    let sent = unsafe { ipckit_sender_send(tx, message.as_ptr().cast(), message.len(), IPCKIT_FOREVER) };
    let mut info = IpckitSenderCloseInfo { stored: 0, undelivered: 0 };
    let closed = unsafe { ipckit_sender_close(tx, &mut info) };
    check(sent, IPCKIT_OK, "ipckit_sender_send")?;
    check(closed, IPCKIT_OK, "ipckit_sender_close")?;
    let output = child.wait_with_output().map_err(|e| e.to_string())?;
    if !output.status.success() || output.stdout != b"hello from Rust\n" {
        return Err(format!("ipckit recv: {}, printed {:?}", output.status, String::from_utf8_lossy(&output.stdout)));
    }
    println!("rust: Rust -> ipckit recv {}: ok", address);
    Ok(())
}

fn main() {
    let tool = std::env::args().nth(1).unwrap_or_else(|| "ipckit".to_string());
    let pid = std::process::id();
    let result = tool_to_rust(&tool, &format!("shm:/ipckit-rust-{}-a", pid))
        .and_then(|_| rust_to_tool(&tool, &format!("shm:/ipckit-rust-{}-b", pid)));
    if let Err(e) = result {
        eprintln!("rust: {}", e);
        std::process::exit(1);
    }
}
