//! The dashboard's files as the server serves them (the page itself is driven in Chromium by
//! tests/browser/run): every file the page loads is there, with its type and the page's
//! content security policy, and nothing it loads comes from elsewhere.

#[path = "support/server.rs"]
mod support;

use support::TestServer;

async fn fetch(s: &TestServer, path: &str) -> (u16, String, String, String) {
    let r = reqwest::get(s.url(path)).await.expect("get");
    let h = |n: &str| {
        r.headers()
            .get(n)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    let (ct, csp) = (h("content-type"), h("content-security-policy"));
    (r.status().as_u16(), ct, csp, r.text().await.expect("body"))
}

/// The `/ui/...` paths a file refers to (`src="..."`, `href="..."`, `from "..."`).
fn references(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for quote in ["src=\"", "href=\"", "from \""] {
        for part in text.split(quote).skip(1) {
            let path = part.split('"').next().unwrap_or_default();
            assert!(
                !path.starts_with("http:")
                    && !path.starts_with("https:")
                    && !path.starts_with("//"),
                "the page loads nothing from elsewhere: {path}"
            );
            if path.starts_with("/ui/") {
                out.push(path.to_string());
            }
        }
    }
    out
}

#[tokio::test]
async fn the_page_and_every_file_it_loads_are_served_from_the_binary() {
    let s = TestServer::start().await;
    let (status, ct, csp, html) = fetch(&s, "/").await;
    assert_eq!(status, 200);
    assert_eq!(ct, "text/html; charset=utf-8");
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(html.contains("<main>"));

    let mut todo = references(&html);
    let mut seen = Vec::new();
    while let Some(path) = todo.pop() {
        if seen.contains(&path) {
            continue;
        }
        let (status, ct, _, body) = fetch(&s, &path).await;
        assert_eq!(status, 200, "{path}");
        let want = if path.ends_with(".js") {
            "text/javascript; charset=utf-8"
        } else {
            "text/css; charset=utf-8"
        };
        assert_eq!(ct, want, "{path}");
        todo.extend(references(&body));
        seen.push(path);
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "/ui/app.js",
            "/ui/chart.js",
            "/ui/forms.js",
            "/ui/style.css"
        ],
        "every file of web/ is reached from the page"
    );
    let (status, _, _, _) = fetch(&s, "/ui/nothing.js").await;
    assert_eq!(status, 404);
}
