//! Weft's dashboard page: built from npm packages (Cytoscape.js for the service graph, uPlot
//! for the charts) with esbuild when this crate is built (`build.rs`), and embedded, so the
//! page needs nothing from the internet. The control plane serves it under `/dashboard/`.

/// An embedded file: its content type and bytes.
pub struct Asset {
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! dist {
    ($file:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/dist/", $file))
    };
}

/// The file at `path` under `/dashboard/` (`""` is the page itself).
pub fn asset(path: &str) -> Option<Asset> {
    let (content_type, bytes): (&str, &[u8]) = match path {
        "" | "index.html" => ("text/html; charset=utf-8", dist!("index.html")),
        "app.js" => ("text/javascript; charset=utf-8", dist!("app.js")),
        "app.css" => ("text/css; charset=utf-8", dist!("app.css")),
        "app.js.LEGAL.txt" => ("text/plain; charset=utf-8", dist!("app.js.LEGAL.txt")),
        _ => return None,
    };
    Some(Asset {
        content_type,
        bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_its_bundle_are_embedded() {
        let page = asset("").expect("the page");
        let html = std::str::from_utf8(page.bytes).expect("utf-8");
        assert!(html.contains("<script src=\"app.js\">"), "{html}");
        let js = asset("app.js").expect("the bundle");
        // Cytoscape and uPlot are bundled in: nothing is fetched from elsewhere.
        assert!(js.bytes.len() > 100_000);
        let js = String::from_utf8_lossy(js.bytes);
        assert!(!js.contains("https://cdn."), "the bundle loads from a CDN");
        assert!(asset("app.css").is_some_and(|c| c.content_type.starts_with("text/css")));
        assert!(asset("../Cargo.toml").is_none() && asset("x.js").is_none());
    }
}
