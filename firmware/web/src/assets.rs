//! Pages, script and style, compiled into the binary: the appliance is offline and nothing
//! is ever fetched from elsewhere. Static files are looked up by exact name in this table,
//! so no request path ever reaches the file system.

pub const APP_HTML: &str = include_str!("../assets/app.html");
pub const LOGIN_HTML: &str = include_str!("../assets/login.html");

const STATIC: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "login.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/login.js"),
    ),
    (
        "i18n.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/i18n.js"),
    ),
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("../assets/style.css"),
    ),
];

/// The content type and body of a static file.
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    STATIC
        .iter()
        .find(|(n, _, _)| *n == name)
        .map(|(_, t, b)| (*t, *b))
}
