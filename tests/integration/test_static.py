"""Static files under www_root: content types, index, caching headers, 304,
and no way out of the root (.., encoded .., symlinks)."""

import email.utils
import json
import os
import socket

import pytest

from helpers import raw_get, read_all, split_response

SECRET = b"TOPSECRET-not-for-the-web"

FILES = {
    "index.html": (b"<!doctype html><title>feed</title>", "text/html; charset=utf-8"),
    "app.js": (b"console.log('feed');\n", "text/javascript; charset=utf-8"),
    "feed.css": (b"body { margin: 0 }\n", "text/css; charset=utf-8"),
    "data.json": (b'{"a": 1}', "application/json"),
    "logo.svg": (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml"),
    "img.png": (b"\x89PNG\r\n\x1a\n\0\0\0\0", "image/png"),
    "photo.jpg": (b"\xff\xd8\xff\xe0jpeg", "image/jpeg"),
    "favicon.ico": (b"\0\0\1\0ico", "image/x-icon"),
    "robots.txt": (b"User-agent: *\n", "text/plain; charset=utf-8"),
    "font.woff2": (b"wOF2font", "font/woff2"),
    "app.js.map": (b'{"version":3}', "application/json"),
    "pic.webp": (b"RIFF\0\0\0\0WEBP", "image/webp"),
    "blob.bin": (b"\0\1\2\3", "application/octet-stream"),
    "with space.txt": (b"spaced", "text/plain; charset=utf-8"),
}


@pytest.fixture
def www(tmp_path):
    """A www_root with one of each file type, a sub-directory, links inside
    and outside, and a secret file next to the root."""
    root = tmp_path / "www"
    root.mkdir()
    for name, (content, _) in FILES.items():
        (root / name).write_bytes(content)
    (root / "sub").mkdir()
    (root / "sub" / "index.html").write_bytes(b"<p>sub index</p>")
    (root / "sub" / "page.html").write_bytes(b"<p>sub page</p>")
    (root / "emptydir").mkdir()
    (root / ".hidden").write_bytes(SECRET)
    (tmp_path / "secret.txt").write_bytes(SECRET)
    os.symlink(tmp_path / "secret.txt", root / "leak.txt")          # file link out
    os.symlink(tmp_path, root / "outdir")                          # directory link out
    os.symlink("/etc/passwd", root / "passwd")                     # absolute link out
    os.symlink("index.html", root / "alias.html")                  # link inside: fine
    os.mkfifo(root / "fifo.txt")
    with open(root / "huge.bin", "wb") as f:                       # sparse, over 8 MB
        f.truncate(9 * 1024 * 1024)
    return root


@pytest.fixture
def site(feedd_factory, www):
    return feedd_factory(www_root=str(www))


@pytest.mark.parametrize("name", sorted(FILES))
def test_content_type_and_body(site, name):
    content, ctype = FILES[name]
    status, headers, body = site.get("/" + name.replace(" ", "%20"))
    assert status == 200, body
    assert headers["content-type"] == ctype
    assert body == content
    assert int(headers["content-length"]) == len(content)


def test_root_serves_index_html(site):
    status, headers, body = site.get("/")
    assert status == 200
    assert body == FILES["index.html"][0]
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_cache_control(site):
    assert site.get("/")[1]["cache-control"] == "no-cache"
    assert site.get("/sub/page.html")[1]["cache-control"] == "no-cache"
    assert site.get("/app.js")[1]["cache-control"] == "public, max-age=300"
    assert site.get("/img.png")[1]["cache-control"] == "public, max-age=300"


def test_last_modified_matches_the_file(site, www):
    os.utime(www / "app.js", (1700000000, 1700000000))
    _, headers, _ = site.get("/app.js")
    assert email.utils.parsedate_to_datetime(headers["last-modified"]).timestamp() == 1700000000


def test_if_modified_since_gives_304(site):
    status, headers, _ = site.get("/app.js")
    lm = headers["last-modified"]
    status, headers, body = site.get("/app.js", headers={"If-Modified-Since": lm})
    assert status == 304
    assert body == b""
    assert headers["last-modified"] == lm
    assert "content-length" not in headers or headers["content-length"] == "0"


def test_if_modified_since_older_gives_200(site, www):
    os.utime(www / "app.js", (1700000000, 1700000000))
    older = email.utils.formatdate(1600000000, usegmt=True)
    status, _, body = site.get("/app.js", headers={"If-Modified-Since": older})
    assert status == 200 and body == FILES["app.js"][0]


def test_file_changed_after_if_modified_since_gives_200(site, www):
    lm = site.get("/app.js")[1]["last-modified"]
    st = os.stat(www / "app.js")
    os.utime(www / "app.js", (st.st_atime, st.st_mtime + 3600))
    status, _, _ = site.get("/app.js", headers={"If-Modified-Since": lm})
    assert status == 200


@pytest.mark.parametrize("value", ["garbage", "", "Sun, 99 Foo 2020 99:99:99 GMT",
                                   "1700000000"])
def test_bad_if_modified_since_is_ignored(site, value):
    status, _, body = site.get("/app.js", headers={"If-Modified-Since": value})
    assert status == 200 and body == FILES["app.js"][0]


def test_head_has_headers_and_no_body(site):
    gs, gh, gb = site.get("/feed.css")
    hs, hh, hb = site.request("HEAD", "/feed.css")
    assert gs == hs == 200
    assert hb == b""
    for name in ("content-type", "content-length", "last-modified", "cache-control"):
        assert hh[name] == gh[name]


def test_subdirectory_index_and_pages(site):
    status, _, body = site.get("/sub/")
    assert status == 200 and body == b"<p>sub index</p>"
    status, _, body = site.get("/sub/page.html")
    assert status == 200 and body == b"<p>sub page</p>"


@pytest.mark.parametrize("path", ["/sub", "/emptydir", "/emptydir/", "/nope.html",
                                  "/sub/nope.html", "/index.html/x", "/fifo.txt", "/.hidden",
                                  "/sub/.hidden"])
def test_not_served_is_404_json(site, path):
    status, headers, body = site.get(path)
    assert status == 404, body
    assert headers["content-type"].startswith("application/json")
    assert json.loads(body)["detail"]
    assert SECRET not in body


def test_symlink_inside_the_root_is_followed(site):
    status, _, body = site.get("/alias.html")
    assert status == 200 and body == FILES["index.html"][0]


@pytest.mark.parametrize("target", [
    "/../secret.txt",
    "/%2e%2e/secret.txt",
    "/%2E%2E/secret.txt",
    "/..%2fsecret.txt",
    "/..%2Fsecret.txt",
    "/sub/../../secret.txt",
    "/sub/%2e%2e/%2e%2e/secret.txt",
    "/./../secret.txt",
    "/../etc/passwd",
    "/../../../../../../etc/passwd",
    "/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/..%2fetc/passwd",
    "/..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "/%252e%252e/secret.txt",
    "/leak.txt",
    "/outdir/secret.txt",
    "/outdir/feedd0/feedd.conf",
    "/passwd",
    "//etc/passwd",
    "/..\\secret.txt",
])
def test_no_way_out_of_the_root(site, target):
    status, headers, body = split_response(raw_get(site.port, target))
    assert status in (400, 403, 404), f"{target}: {status} {body[:200]!r}"
    assert SECRET not in body and b"root:" not in body and b"www_root" not in body
    assert json.loads(body)["detail"]


def test_file_over_8mb_is_refused(site):
    status, _, body = site.get("/huge.bin")
    assert status == 403
    assert json.loads(body)["detail"]


def test_query_string_is_ignored_for_files(site):
    status, _, body = site.get("/app.js?v=123")
    assert status == 200 and body == FILES["app.js"][0]


def test_encoded_nul_is_refused(site):
    status, _, body = split_response(raw_get(site.port, "/index.html%00.txt"))
    assert status == 400
    assert json.loads(body)["detail"]


def test_post_to_a_file_is_405(site):
    status, headers, _ = site.request("POST", "/index.html", body=b"x")
    assert status == 405 and headers["allow"] == "GET, HEAD"


def test_static_is_served_by_a_default_instance(feedd, repo_root):
    # The repository's own page, whatever it holds.
    index = (repo_root / "www" / "index.html").read_bytes()
    status, headers, body = feedd.get("/")
    assert status == 200 and body == index
    assert headers["content-type"] == "text/html; charset=utf-8"


def test_headers_around_empty_values_are_read_right(site):
    # Empty header values must not shift names and values: the
    # If-Modified-Since after them is still found (and matched case-insensitively).
    lm = site.get("/app.js")[1]["last-modified"]
    s = socket.create_connection(("127.0.0.1", site.port), timeout=10)
    s.sendall(f"GET /app.js HTTP/1.1\r\nHost: t\r\nX-Empty:\r\nX-Blank:   \r\n"
              f"if-modified-since:  {lm}  \r\nConnection: close\r\n\r\n".encode())
    got = read_all(s)
    s.close()
    assert got.startswith(b"HTTP/1.1 304 "), got[:200]
