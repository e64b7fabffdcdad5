//! A small W3C WebDriver client over Debian's `chromedriver` and headless `chromium`: enough to
//! drive the console as a user would (find, click, type, read, screenshot). Plain HTTP/1.1 over
//! a socket, as `process::http` speaks to the server: no client library to build.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The key W3C WebDriver names element references by.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a wait for the page lasts before the test fails.
const PATIENCE: Duration = Duration::from_secs(15);

pub struct Browser {
    driver: Child,
    port: u16,
    session: String,
    _profile: tempfile::TempDir,
}

#[derive(Clone)]
pub struct Element<'b> {
    browser: &'b Browser,
    id: String,
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// One exchange with the driver: the JSON answer's `value`, or the driver's error.
fn exchange(port: u16, method: &str, path: &str, body: Option<&Value>) -> Result<Value, String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let body = body.map(Value::to_string).unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    // chromedriver keeps the connection open whatever the request says: the answer ends where
    // its Content-Length says (or its last chunk).
    let mut response = Vec::new();
    let mut buffer = [0u8; 16 * 1024];
    let (head, payload) = loop {
        let read = stream.read(&mut buffer).map_err(|e| e.to_string())?;
        if read == 0 {
            return Err("the driver closed the connection".into());
        }
        response.extend_from_slice(&buffer[..read]);
        let Some(split) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
            continue;
        };
        let head = String::from_utf8_lossy(&response[..split]).to_lowercase();
        let body = &response[split + 4..];
        let length = head
            .lines()
            .find_map(|line| line.strip_prefix("content-length:"))
            .and_then(|n| n.trim().parse::<usize>().ok());
        match length {
            Some(length) if body.len() >= length => break (head, body[..length].to_vec()),
            None if head.contains("transfer-encoding: chunked") && body.ends_with(b"0\r\n\r\n") => {
                break (head, dechunk(body))
            }
            _ => continue,
        }
    };
    let answer: Value = serde_json::from_slice(&payload)
        .map_err(|e| format!("{e}: {}", String::from_utf8_lossy(&payload)))?;
    let value = answer.get("value").cloned().unwrap_or(Value::Null);
    match head.get(9..12) {
        Some("200") => Ok(value),
        _ => Err(format!("{} {}", value["error"], value["message"])),
    }
}

fn dechunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(line_end) = data.windows(2).position(|w| w == b"\r\n") {
        let size = usize::from_str_radix(
            String::from_utf8_lossy(&data[..line_end])
                .split(';')
                .next()
                .unwrap()
                .trim(),
            16,
        )
        .unwrap_or(0);
        if size == 0 {
            break;
        }
        let start = line_end + 2;
        out.extend_from_slice(&data[start..start + size]);
        data = &data[start + size + 2..];
    }
    out
}

impl Browser {
    /// A headless Chromium of the given window size, or `None` (said on standard error) where
    /// Chromium or its driver is not installed.
    pub fn start(test: &str, width: u32, height: u32) -> Option<Browser> {
        let (Some(driver), Some(chromium)) = (
            find_program(&["chromedriver"]),
            find_program(&["chromium", "chromium-browser", "google-chrome"]),
        ) else {
            eprintln!(
                "SKIPPED {test}: chromium and chromium-driver are not installed \
                 (apt-get install chromium chromium-driver)"
            );
            return None;
        };
        let port = free_port();
        let child = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        while exchange(port, "GET", "/status", None)
            .map(|status| status["ready"] != json!(true))
            .unwrap_or(true)
        {
            assert!(Instant::now() < deadline, "chromedriver did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--no-first-run", "--disable-extensions", "--lang=en-US",
                    format!("--window-size={width},{height}"),
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            },
        }}});
        let mut browser = Browser {
            driver: child,
            port,
            session: String::new(),
            _profile: profile,
        };
        let session = exchange(port, "POST", "/session", Some(&capabilities))
            .unwrap_or_else(|e| panic!("no browser session: {e}"));
        browser.session = session["sessionId"].as_str().unwrap().to_owned();
        Some(browser)
    }

    fn command(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value, String> {
        let path = format!("/session/{}{path}", self.session);
        exchange(self.port, method, &path, body.as_ref())
    }

    fn must(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        self.command(method, path, body)
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"))
    }

    pub fn goto(&self, url: &str) {
        self.must("POST", "/url", Some(json!({"url": url})));
    }

    pub fn url(&self) -> String {
        self.must("GET", "/url", None).as_str().unwrap().to_owned()
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and answers what it returns.
    pub fn script(&self, script: &str, args: Value) -> Value {
        self.must(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    fn find_now(&self, css: &str) -> Vec<Element<'_>> {
        let found = self
            .command(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .unwrap_or(Value::Null);
        found
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|element| Element {
                        browser: self,
                        id: element[ELEMENT].as_str().unwrap().to_owned(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Waits until `ready` holds, failing the test with `what` after a while.
    pub fn wait_until(&self, what: &str, mut ready: impl FnMut(&Self) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !ready(self) {
            if Instant::now() > deadline {
                let page = self.script("return document.body.innerText;", json!([]));
                panic!(
                    "waited in vain for {what}; the page says:\n{}",
                    page.as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The first element matching `css`, once there is one.
    pub fn find(&self, css: &str) -> Element<'_> {
        self.wait_until(css, |b| !b.find_now(css).is_empty());
        self.find_now(css).remove(0)
    }

    pub fn exists(&self, css: &str) -> bool {
        !self.find_now(css).is_empty()
    }

    /// Waits until the first element matching `css` has a text containing `needle`.
    pub fn wait_text(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        self.wait_until(&format!("{css} to say {needle:?}"), |b| {
            last = b
                .find_now(css)
                .first()
                .map(|e| e.text())
                .unwrap_or_default();
            last.contains(needle)
        });
        last
    }

    /// Presses Tab, as a keyboard user moves to the next control; answers the id of the
    /// element that has the focus then.
    pub fn press_tab(&self) -> String {
        let tab = "\u{E004}";
        self.must(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": tab}, {"type": "keyUp", "value": tab}]}]}),
            ),
        );
        self.script("return document.activeElement.id;", json!([]))
            .as_str()
            .unwrap_or("")
            .to_owned()
    }

    /// The text of an open `alert()`, if one is open.
    pub fn alert_text(&self) -> Option<String> {
        self.command("GET", "/alert/text", None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
    }

    /// A PNG of the window, written to `dir/name` when `dir` is given.
    pub fn screenshot(&self, dir: Option<&Path>, name: &str) {
        let Some(dir) = dir else { return };
        use base64::Engine;
        let png = self.must("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            let _ = self.command("DELETE", "", None);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Element<'_> {
    fn path(&self, rest: &str) -> String {
        format!("/element/{}{rest}", self.id)
    }

    pub fn click(&self) {
        self.browser
            .must("POST", &self.path("/click"), Some(json!({})));
    }

    pub fn type_text(&self, text: &str) {
        self.browser
            .must("POST", &self.path("/value"), Some(json!({"text": text})));
    }

    pub fn clear(&self) {
        self.browser
            .must("POST", &self.path("/clear"), Some(json!({})));
    }

    pub fn text(&self) -> String {
        self.browser
            .command("GET", &self.path("/text"), None)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default()
    }

    pub fn property(&self, name: &str) -> Value {
        self.browser
            .must("GET", &self.path(&format!("/property/{name}")), None)
    }

    /// Chooses the option of value `value` of this `select`.
    pub fn choose(&self, value: &str) {
        let script = "const s = arguments[0]; s.value = arguments[1]; \
                      s.dispatchEvent(new Event('change', {bubbles: true})); return s.value;";
        let chosen = self
            .browser
            .script(script, json!([{ELEMENT: self.id}, value]));
        assert_eq!(chosen, json!(value), "no option {value:?}");
    }
}
