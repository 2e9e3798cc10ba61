//! A `User-Agent` read for people: "Firefox on Linux", not the raw string.
//!
//! Design decision: a short ordered list of tokens, not a database of every agent. The order
//! matters because agents claim each other's names (every Chromium browser says `Safari`, Edge
//! and Opera say `Chrome`), so the most specific token is looked for first. Anything unknown
//! is said to be unknown rather than guessed; the raw string is never shown.

/// Browsers (or HTTP clients) by the token that names them, most specific first.
const BROWSERS: &[(&str, &str)] = &[
    ("Edg/", "Edge"),
    ("EdgA/", "Edge"),
    ("OPR/", "Opera"),
    ("SamsungBrowser/", "Samsung Internet"),
    ("Firefox/", "Firefox"),
    ("FxiOS/", "Firefox"),
    ("CriOS/", "Chrome"),
    ("HeadlessChrome/", "Chrome (headless)"),
    ("Chromium/", "Chromium"),
    ("Chrome/", "Chrome"),
    ("Safari/", "Safari"),
    ("curl/", "curl"),
    ("Wget/", "Wget"),
    ("python-requests/", "Python requests"),
    ("okhttp/", "OkHttp"),
];

/// Operating systems by a token that names them, most specific first (Android says `Linux`,
/// iOS says `like Mac OS X`).
const SYSTEMS: &[(&str, &str)] = &[
    ("Android", "Android"),
    ("iPhone", "iOS"),
    ("iPad", "iPadOS"),
    ("CrOS", "ChromeOS"),
    ("Windows", "Windows"),
    ("Mac OS X", "macOS"),
    ("Macintosh", "macOS"),
    ("Linux", "Linux"),
    ("FreeBSD", "FreeBSD"),
];

/// What a session's device is, as far as its `User-Agent` tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    /// The browser or client, if recognised.
    pub browser: Option<&'static str>,
    /// The operating system, if recognised.
    pub os: Option<&'static str>,
}

impl Device {
    /// Reads a `User-Agent` (absent: nothing is known).
    #[must_use]
    pub fn parse(user_agent: Option<&str>) -> Self {
        let ua = user_agent.unwrap_or_default();
        let find = |table: &[(&str, &'static str)]| {
            table
                .iter()
                .find(|(token, _)| ua.contains(token))
                .map(|(_, name)| *name)
        };
        Self {
            browser: find(BROWSERS),
            os: find(SYSTEMS),
        }
    }
}

impl std::fmt::Display for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.browser, self.os) {
            (Some(b), Some(os)) => write!(f, "{b} on {os}"),
            (Some(b), None) => f.write_str(b),
            (None, Some(os)) => write!(f, "Unknown browser on {os}"),
            (None, None) => f.write_str("Unknown device"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Device;

    #[test]
    fn common_agents_are_named_by_browser_and_system() {
        for (ua, shown) in [
            (
                "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
                "Firefox on Linux",
            ),
            (
                "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 Edg/126.0.0.0",
                "Edge on Windows",
            ),
            (
                "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
                "Safari on macOS",
            ),
            (
                "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/126.0 Mobile/15E148 Safari/604.1",
                "Chrome on iOS",
            ),
            (
                "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
                "Chrome on Android",
            ),
            (
                "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36",
                "Chrome (headless) on Linux",
            ),
            (
                "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36 OPR/110.0",
                "Opera on ChromeOS",
            ),
            ("curl/8.5.0", "curl"),
        ] {
            assert_eq!(Device::parse(Some(ua)).to_string(), shown, "{ua}");
        }
    }

    #[test]
    fn unknown_agents_are_said_to_be_unknown() {
        assert_eq!(Device::parse(None).to_string(), "Unknown device");
        assert_eq!(Device::parse(Some("")).to_string(), "Unknown device");
        assert_eq!(
            Device::parse(Some("Mozilla/5.0 (Windows NT 10.0) Strange/1")).to_string(),
            "Unknown browser on Windows"
        );
    }
}
