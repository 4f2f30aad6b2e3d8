"""The data layer: checksummed cache, offline mirror, downloads and their failures."""

import hashlib
import http.server
import threading
from pathlib import Path

import pytest
import yaml

from helpers import data

PAYLOAD = b"cell,umis\na,10\nb,20\n"


@pytest.fixture
def server(tmp_path):
    """A loopback HTTP server serving tmp_path/www."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "good.csv").write_bytes(PAYLOAD)
    (root / "tampered.csv").write_bytes(PAYLOAD + b"c,30\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(root), **kwargs)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture
def manifest(tmp_path, server, monkeypatch):
    sha = hashlib.sha256(PAYLOAD).hexdigest()
    entries = {
        "t/good": {"path": "t/good.csv", "url": f"{server}/good.csv", "sha256": sha},
        "t/tampered": {"path": "t/tampered.csv", "url": f"{server}/tampered.csv", "sha256": sha},
        "t/offline": {"path": "t/offline.csv", "url": "http://127.0.0.1:9/none.csv", "sha256": sha},
        "t/manual": {"path": "t/manual.fa", "url": None, "sha256": None, "manual": True,
                     "description": "Export it yourself."},
    }
    path = tmp_path / "manifest.yml"
    path.write_text(yaml.safe_dump({"entries": entries}))
    monkeypatch.setenv(data.MANIFEST_ENV, str(path))
    monkeypatch.setenv(data.CACHE_ENV, str(tmp_path / "cache"))
    monkeypatch.delenv(data.MIRROR_ENV, raising=False)
    return path


def test_download_verifies_and_caches(manifest, tmp_path):
    path = data.fetch("t/good")
    assert path == tmp_path / "cache" / "t" / "good.csv"
    assert path.read_bytes() == PAYLOAD
    assert data.fetch("t/good") == path  # second call is served from the cache


def test_checksum_mismatch_is_an_error_and_leaves_no_file(manifest, tmp_path):
    with pytest.raises(data.ChecksumError, match="t/tampered"):
        data.fetch("t/tampered")
    cache = tmp_path / "cache"
    leftovers = [p for p in cache.rglob("*") if p.is_file()] if cache.exists() else []
    assert leftovers == []


def test_corrupted_cache_file_is_detected(manifest, tmp_path):
    path = data.fetch("t/good")
    path.write_bytes(b"corrupt")
    with pytest.raises(data.ChecksumError, match="cache"):
        data.fetch("t/good")


def test_offline_without_mirror_names_entry_and_setting(manifest):
    with pytest.raises(data.DataUnavailableError) as err:
        data.fetch("t/offline")
    assert "t/offline" in str(err.value) and data.MIRROR_ENV in str(err.value)


def test_mirror_is_used_in_place_and_verified(manifest, tmp_path, monkeypatch):
    mirror = tmp_path / "mirror"
    (mirror / "t").mkdir(parents=True)
    (mirror / "t" / "offline.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    assert data.fetch("t/offline") == mirror / "t" / "offline.csv"
    (mirror / "t" / "offline.csv").write_bytes(b"tampered")
    with pytest.raises(data.ChecksumError, match="mirror"):
        data.fetch("t/offline")


def test_mirror_missing_file_says_so(manifest, tmp_path, monkeypatch):
    monkeypatch.setenv(data.MIRROR_ENV, str(tmp_path / "empty-mirror"))
    with pytest.raises(data.DataUnavailableError, match="empty-mirror has no t/offline.csv"):
        data.fetch("t/offline")


def test_manual_entry_explains_how_to_supply_it(manifest):
    with pytest.raises(data.DataUnavailableError, match="Export it yourself"):
        data.fetch("t/manual")


def test_unknown_key(manifest):
    with pytest.raises(KeyError, match="No entry"):
        data.fetch("t/nothing")


def test_repository_manifest_is_complete():
    entries = data.load_manifest(Path(__file__).parents[1] / "data_manifest.yml")
    for entry in entries.values():
        assert entry.citation and entry.licence and entry.description, entry.key
        if not entry.large:
            assert entry.url.startswith("https://") and len(entry.sha256) == 64, entry.key
            assert entry.size > 0
    published = [k for k in entries if k.startswith("published/")]
    assert len(published) == 26  # every file of the released tables
    assert entries["gisaid/spike_sequences"].manual


def test_every_mirrored_file_matches_the_manifest():
    """With a mirror configured (CI), every small entry is present and verifies."""
    if data.mirror_dir() is None:
        pytest.skip("no offline mirror configured (NOISESCALING_DATA_MIRROR)")
    for key, entry in data.load_manifest().items():
        if not entry.large:
            assert data.fetch(key).is_file()


# --------------------------------------------------------------------------------------------
# issue 16: a bad key, a corrupt cached file
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("key", [None, 3, b"t/good", ""])
def test_a_key_that_is_not_a_name_is_a_type_error(manifest, key):
    # before: fetch(None) raised AttributeError ('NoneType' object has no attribute 'split')
    with pytest.raises(TypeError, match="`key` must be the name of a data manifest entry"):
        data.fetch(key)


def test_corrupt_cache_falls_back_to_a_valid_mirror_copy(manifest, tmp_path, monkeypatch):
    path = data.fetch("t/good")
    path.write_bytes(b"corrupt")
    mirror = tmp_path / "mirror"
    (mirror / "t").mkdir(parents=True)
    (mirror / "t" / "good.csv").write_bytes(PAYLOAD)
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    with pytest.warns(UserWarning, match=f"delete {path}"):
        assert data.fetch("t/good") == mirror / "t" / "good.csv"
    assert path.read_bytes() == b"corrupt"  # the user's file is left for them to delete


def test_corrupt_cache_without_a_good_copy_says_which_file_to_delete(
    manifest, tmp_path, monkeypatch
):
    path = data.fetch("t/good")
    path.write_bytes(b"corrupt")
    with pytest.raises(data.ChecksumError, match=f"Delete the corrupt cached file \\({path}\\)"):
        data.fetch("t/good")
    mirror = tmp_path / "mirror"
    (mirror / "t").mkdir(parents=True)
    (mirror / "t" / "good.csv").write_bytes(b"also corrupt")
    monkeypatch.setenv(data.MIRROR_ENV, str(mirror))
    with pytest.raises(data.ChecksumError, match="Delete the corrupt cached file"):
        data.fetch("t/good")
    path.unlink()
    with pytest.raises(data.ChecksumError, match="Replace the mirror file"):
        data.fetch("t/good")
